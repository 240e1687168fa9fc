/// TLS to Redis as the operator asked for it: on for a `rediss…` URL or `--redis-tls`,
/// with the files and names that go with it. Certificates are checked unless ``insecure``
/// says otherwise, which the node then logs at start.
public struct RedisTLSSettings: Sendable, Equatable {
    /// TLS for a URL of any scheme (a `rediss…` URL needs nothing more).
    public var enabled = false
    /// PEM file of the CAs to trust; `nil`: the system's.
    public var caFile: String?
    /// PEM files of a client certificate and its key (mutual TLS).
    public var certificateFile: String?
    public var keyFile: String?
    /// The name the server's certificate must carry; `nil`: the host in the URL.
    public var serverName: String?
    /// No certificate check at all.
    public var insecure = false

    public init(
        enabled: Bool = false,
        caFile: String? = nil,
        certificateFile: String? = nil,
        keyFile: String? = nil,
        serverName: String? = nil,
        insecure: Bool = false
    ) {
        self.enabled = enabled
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.serverName = serverName
        self.insecure = insecure
    }

    /// Whether any TLS option was given (each needs TLS to be on).
    var hasOptions: Bool {
        self.caFile != nil || self.certificateFile != nil || self.keyFile != nil || self.serverName != nil
            || self.insecure
    }
}
