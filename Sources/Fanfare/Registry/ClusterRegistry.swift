/// One node's row in the registry.
public struct NodeRow: Codable, Sendable, Hashable {
    public var id: String
    public var address: String
    public var version: String
    /// Milliseconds since 1970 when the node started.
    public var startedAt: Int64
    public var connections: Int
    public var clients: Int
    /// Milliseconds since 1970 when the row was last refreshed.
    public var lastSeen: Int64
}

/// Cluster-wide counts, answerable from any node.
public struct ClusterSnapshot: Sendable, Hashable {
    public var nodes: [NodeRow]
    /// Connections per client id, summed over nodes.
    public var clients: [String: Int]

    public var totalConnections: Int { self.nodes.reduce(0) { $0 + $1.connections } }
}

/// Where nodes record themselves and their counts.
protocol ClusterRegistry: Sendable {
    /// Refreshes this node's row until cancelled.
    func run() async
    /// Every live node and the connections per client.
    func snapshot() async throws -> ClusterSnapshot
    /// One client's connections per node.
    func client(_ id: String) async throws -> [(node: String, connections: Int)]
    /// Removes this node's row at once.
    func leave() async
}

/// What a node says about itself in the registry.
struct NodeIdentity: Sendable {
    var id: String
    var address: String
    var version: String
    var startedAt: Int64

    /// This node's registry row with `counts`, seen now.
    func row(_ counts: NodeHub.Counts) -> NodeRow {
        NodeRow(
            id: self.id,
            address: self.address,
            version: self.version,
            startedAt: self.startedAt,
            connections: counts.connections,
            clients: counts.clients,
            lastSeen: WallClock.milliseconds()
        )
    }
}
