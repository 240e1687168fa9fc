package import HiredisNIO

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

    /// Whether a client of `redisURL` speaks TLS: a `rediss…` URL, or ``enabled``.
    public func isOn(redisURL: String?) -> Bool {
        guard let url = redisURL else { return false }
        return self.enabled || url.hasPrefix("rediss")
    }

    /// Refuses settings that would be ignored or cannot work, with a sentence naming the
    /// options (``FanfareError/Code/invalidConfiguration``).
    public func check(redisURL: String?) throws {
        func invalid(_ sentence: String) -> FanfareError { FanfareError(.invalidConfiguration, sentence) }
        if self.enabled, redisURL == nil {
            throw invalid("--redis-tls needs a Redis URL (--redis): an embedded node talks to no Redis")
        }
        if self.hasOptions, !self.isOn(redisURL: redisURL) {
            throw invalid(
                "the --redis-tls-… options need TLS to Redis: use a rediss:// (rediss-sentinel://, rediss-cluster://) "
                    + "URL or --redis-tls"
            )
        }
        if (self.certificateFile == nil) != (self.keyFile == nil) {
            throw invalid("--redis-tls-cert-file and --redis-tls-key-file go together (mutual TLS needs both)")
        }
        if self.insecure, self.caFile != nil || self.serverName != nil {
            throw invalid(
                "--redis-tls-insecure checks no certificate, so --redis-tls-ca-file and --redis-tls-server-name would do nothing"
            )
        }
    }
}

extension RedisTLSSettings {
    /// The TLS a client of `redisURL` speaks, checked and with its files read; `nil` for
    /// none. The node and `fanfare publish --redis` both make theirs here.
    package func redisTLS(for redisURL: String) throws -> RedisTLS? {
        try self.check(redisURL: redisURL)
        guard self.isOn(redisURL: redisURL) else { return nil }
        let tls = RedisTLS(
            caFile: self.caFile,
            certificateFile: self.certificateFile,
            keyFile: self.keyFile,
            serverName: self.serverName,
            verifyCertificates: !self.insecure
        )
        do {
            try tls.check()
        } catch let error as RedisClientError {
            throw FanfareError(.invalidConfiguration, error.message, underlying: error)
        }
        return tls
    }
}
