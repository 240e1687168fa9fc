import ArgumentParser
import Fanfare
import Foundation

struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Show every live node and its connection and client counts."
    )

    @Option(help: "Any node's base URL (FANFARE_URL, default http://127.0.0.1:8080).")
    var node: String?

    @Flag(help: "Refresh every second until interrupted.")
    var watch = false

    @Option(help: "Admin key or admin token, sent as a bearer credential (FANFARE_ADMIN_KEY).")
    var key: String?

    func run() async throws {
        let base = setting(self.node, "FANFARE_URL", default: "http://127.0.0.1:8080") ?? ""
        repeat {
            let response = try await FanfareHTTPClient.request(
                "GET",
                base + "/api/sse/metrics",
                headers: bearer(setting(self.key, "FANFARE_ADMIN_KEY"))
            )
            guard response.status == 200,
                let object = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any]
            else {
                print("error \(response.status): \(response.body)")
                throw ExitCode(1)
            }
            let table = Self.render(object)
            if self.watch {
                print("\u{1B}[H\u{1B}[2J" + table, terminator: "")
                try await Task.sleep(for: .seconds(1))
            } else {
                print(table, terminator: "")
            }
        } while self.watch
    }

    static func render(_ metrics: [String: Any]) -> String {
        let nodes = metrics["nodes"] as? [[String: Any]] ?? []
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var rows = [["NODE", "ADDRESS", "VERSION", "UPTIME", "CONNECTIONS", "CLIENTS", "LAST SEEN"]]
        for node in nodes {
            let seen = (node["lastSeen"] as? NSNumber)?.int64Value ?? now
            rows.append([
                "\(node["nodeId"] ?? "?")", "\(node["address"] ?? "?")", "\(node["version"] ?? "?")",
                Self.duration((node["uptimeSeconds"] as? NSNumber)?.intValue ?? 0),
                "\(node["connections"] ?? 0)", "\(node["clients"] ?? 0)", "\(max(0, now - seen)) ms ago",
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
        text += "\(nodes.count) nodes, \(metrics["totalConnections"] ?? 0) connections, "
        text += "\(metrics["totalClients"] ?? 0) clients, \(metrics["averageConnectionsPerClient"] ?? 0) per client\n"
        return text
    }

    static func duration(_ seconds: Int) -> String {
        seconds >= 3600
            ? "\(seconds / 3600)h\(seconds % 3600 / 60)m"
            : seconds >= 60 ? "\(seconds / 60)m\(seconds % 60)s" : "\(seconds)s"
    }
}
