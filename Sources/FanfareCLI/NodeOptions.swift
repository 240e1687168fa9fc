import ArgumentParser
import FanfareClient

/// How the CLI reaches a node: its URL (`http://` or `https://`) and, for TLS with a
/// private certificate authority, the certificate to trust.
struct NodeOptions: ParsableArguments {
    /// The variables of these options, for the commands that use them.
    static let environment: [EnvironmentOption] = [.value("node", variable: "FANFARE_URL"), .value("cacert")]

    @Option(help: "A node's (or nginx's) base URL, http:// or https://.")
    var node = "http://127.0.0.1:8080"

    @Option(help: "PEM file of a certificate to trust for https:// besides the system's.")
    var cacert: String?

    /// A client for the node; shut it down when done.
    func client() -> FanfareClient {
        FanfareClient(caCertificateFile: self.cacert)
    }

    /// `path` on the node, e.g. `/api/sse/notify`.
    func url(_ path: String) -> String {
        (self.node.hasSuffix("/") ? String(self.node.dropLast()) : self.node) + path
    }
}

extension FanfareClient {
    /// Runs `body` with the client, and shuts the client down after it, thrown or not.
    func using<Value>(_ body: (FanfareClient) async throws -> Value) async throws -> Value {
        do {
            let value = try await body(self)
            try await self.shutdown()
            return value
        } catch {
            try? await self.shutdown()
            throw error
        }
    }
}
