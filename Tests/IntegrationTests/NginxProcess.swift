import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// nginx started by a test with the project's own config (Deploy/nginx), rendered for
/// three loopback nodes, listening on a free loopback port.
final class NginxProcess: Sendable {
    let port: Int
    /// The TLS listener's port, when one was asked for.
    let tlsPort: Int?
    let pid: pid_t
    let directory: String

    static let executable: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let candidates =
            path.split(separator: ":").map { "\($0)/nginx" } + ["/usr/sbin/nginx", "/usr/local/sbin/nginx"]
        return candidates.first { access($0, X_OK) == 0 }
    }()

    /// Runs when nginx is installed, and always under CI (where it then fails if missing).
    static let enabled = NginxProcess.executable != nil || RedisServerProcess.isRequired

    var url: String { "http://127.0.0.1:\(self.port)" }
    var tlsURL: String? { self.tlsPort.map { "https://127.0.0.1:\($0)" } }

    /// - Parameter tls: a certificate and key (PEM files) for a second, TLS listener in
    ///   front of the same upstream, like the TLS server the template describes.
    init(nodes: [String], tls: (certificate: String, key: String)? = nil) async throws {
        guard let executable = Self.executable else {
            throw TestFailure("nginx is not installed; run scripts/install-dependencies.sh")
        }
        guard nodes.count == 3 else { throw TestFailure("the config has three upstream servers") }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let template = try String(
            contentsOf: root.appendingPathComponent("Deploy/nginx/fanfare.conf.template"),
            encoding: .utf8
        )
        self.port = try RedisServerProcess.freePort()
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("fanfare-nginx-\(UUID())").path
        try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
        var config =
            template
            .replacingOccurrences(of: "${FANFARE_LISTEN}", with: "127.0.0.1:\(self.port)")
            .replacingOccurrences(of: "${FANFARE_NODE_1}", with: nodes[0])
            .replacingOccurrences(of: "${FANFARE_NODE_2}", with: nodes[1])
            .replacingOccurrences(of: "${FANFARE_NODE_3}", with: nodes[2])
            .replacingOccurrences(of: "${FANFARE_PID}", with: "\(self.directory)/nginx.pid")
            .replacingOccurrences(of: "${FANFARE_TMP}", with: self.directory)
            // The project's bound on a stop with streams open, shortened for the tests.
            .replacingOccurrences(of: "worker_shutdown_timeout 10s;", with: "worker_shutdown_timeout 1s;")
        if let tls {
            let tlsPort = try RedisServerProcess.freePort()
            let server = """
                    server {
                        listen 127.0.0.1:\(tlsPort) ssl;
                        ssl_certificate     \(tls.certificate);
                        ssl_certificate_key \(tls.key);
                        location ~ ^/api/(sse/subscribe/|notifications/stream$|events$) {
                            proxy_pass http://fanfare_nodes;
                            proxy_http_version 1.1;
                            proxy_set_header Connection "";
                            proxy_buffering off;
                            proxy_cache off;
                            gzip off;
                            proxy_read_timeout 1h;
                        }
                        location / {
                            proxy_pass http://fanfare_nodes;
                            proxy_http_version 1.1;
                            proxy_set_header Connection "";
                        }
                    }
                }

                """
            guard let end = config.range(of: "}", options: .backwards) else {
                throw TestFailure("the nginx template has no http block")
            }
            config.replaceSubrange(end.lowerBound..<config.endIndex, with: server)
            self.tlsPort = tlsPort
        } else {
            self.tlsPort = nil
        }
        let path = "\(self.directory)/nginx.conf"
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        self.pid = try RedisServerProcess.spawn([
            executable, "-c", path, "-p", self.directory, "-e", "stderr", "-g", "daemon off;",
        ])
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            // nginx writes its pid file once it holds its ports: an answer counts only then,
            // so another server on the port is never taken for this one.
            let pidFile = try? String(contentsOfFile: "\(self.directory)/nginx.pid", encoding: .utf8)
            if pidFile?.trimmingCharacters(in: .whitespacesAndNewlines) == "\(self.pid)",
                (try? await FanfareClientProbe.status(self.url + "/healthz")) == 200
            {
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        self.stop()
        throw TestFailure("nginx did not start on port \(self.port)")
    }

    func stop() {
        RedisServerProcess.signalAndReap(self.pid, SIGQUIT)
        try? FileManager.default.removeItem(atPath: self.directory)
    }

    deinit { self.stop() }
}
