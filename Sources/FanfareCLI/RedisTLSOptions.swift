import ArgumentParser
import Fanfare
import HiredisNIO

/// TLS to Redis, for `serve` and `publish --redis`: on for a `rediss…` URL or `--redis-tls`,
/// with the files and names that go with it.
struct RedisTLSOptions: ParsableArguments {
    /// The variables of these options, for the commands that use them.
    static let environment: [EnvironmentOption] = [
        .flag("redis-tls"), .value("redis-tls-ca-file"), .value("redis-tls-cert-file"), .value("redis-tls-key-file"),
        .value("redis-tls-server-name"), .flag("redis-tls-insecure"),
    ]

    @Flag(help: "TLS to Redis whatever the URL's scheme (a rediss… URL turns it on by itself).")
    var redisTls = false

    @Option(help: "PEM file of the CAs that sign Redis's certificate (default: the system's).")
    var redisTlsCaFile: String?

    @Option(
        help: "PEM file of a client certificate, for a Redis that asks for one (mutual TLS); with --redis-tls-key-file."
    )
    var redisTlsCertFile: String?

    @Option(help: "PEM file of the client certificate's key.")
    var redisTlsKeyFile: String?

    @Option(help: "The name Redis's certificate must carry (default: the host in the URL).")
    var redisTlsServerName: String?

    @Flag(help: "Do not check Redis's certificate at all (anyone on the path can read and change the traffic).")
    var redisTlsInsecure = false

    var settings: RedisTLSSettings {
        RedisTLSSettings(
            enabled: self.redisTls,
            caFile: self.redisTlsCaFile,
            certificateFile: self.redisTlsCertFile,
            keyFile: self.redisTlsKeyFile,
            serverName: self.redisTlsServerName,
            insecure: self.redisTlsInsecure
        )
    }

    /// The TLS a client of `url` uses (checked as a node checks it), or `nil` for none.
    func tls(for url: String) throws -> RedisTLS? {
        try self.settings.redisTLS(for: url)
    }
}
