import ArgumentParser
import FanfareAPI
import FanfareClient
import Foundation

struct ClusterCommand: AsyncParsableCommand, EnvironmentConfigurable {
    static let environment: [EnvironmentOption] =
        NodeOptions.environment + [.secret("key", variable: "FANFARE_ADMIN_KEY")]

    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Show every live node and its connection and client counts.",
        discussion: EnvironmentOption.help(Self.environment)
    )

    @OptionGroup var nodeOptions: NodeOptions

    @Flag(help: "Refresh every second until interrupted.")
    var watch = false

    @Option(help: "Admin key or admin token, sent as a bearer credential.")
    var key: String?

    @Option(help: "File holding the admin key or token.")
    var keyFile: String?

    func run() async throws {
        let key = try Secret.read(self.key, file: self.keyFile, option: "key")
        try await self.nodeOptions.client().using { client in
            repeat {
                let response = try await client.request(
                    "GET",
                    self.nodeOptions.url("/api/sse/metrics"),
                    headers: bearer(key)
                )
                guard response.status == 200 else {
                    print("error \(response.status): \(response.text)")
                    throw ExitCode(1)
                }
                let table = Self.render(try response.decode(ClusterMetricsAnswer.self))
                if self.watch {
                    print("\u{1B}[H\u{1B}[2J" + table, terminator: "")
                    try await Task.sleep(for: .seconds(1))
                } else {
                    print(table, terminator: "")
                }
            } while self.watch
        }
    }

    static func render(_ metrics: ClusterMetricsAnswer) -> String {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var rows = [["NODE", "ADDRESS", "VERSION", "UPTIME", "CONNECTIONS", "CLIENTS", "DELIVERING", "LAST SEEN"]]
        for node in metrics.nodes {
            rows.append([
                node.nodeId, node.address, node.version, Self.duration(node.uptimeSeconds),
                "\(node.connections)", "\(node.clients)", node.delivering.map { $0 ? "yes" : "NO" } ?? "-",
                "\(max(0, now - node.lastSeen)) ms ago",
            ])
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        var text = ""
        for row in rows {
            text += zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(
                separator: "  "
            )
            text += "\n"
        }
        text += "\(metrics.nodes.count) nodes, \(metrics.totalConnections) connections, "
        text += "\(metrics.totalClients) clients, \(Self.number(metrics.averageConnectionsPerClient)) per client\n"
        return text
    }

    /// `1.33`, `1`, `0`: as the node's JSON writes it.
    static func number(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }

    static func duration(_ seconds: Int64) -> String {
        seconds >= 3600
            ? "\(seconds / 3600)h\(seconds % 3600 / 60)m"
            : seconds >= 60 ? "\(seconds / 60)m\(seconds % 60)s" : "\(seconds)s"
    }
}
