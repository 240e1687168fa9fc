/// The answer of `GET /api/sse/metrics`: cluster-wide counts from any node, a row per live
/// node, and the answering node's own counters.
public struct ClusterMetricsAnswer: Codable, Sendable, Hashable {
    public var totalConnections: Int
    public var totalClients: Int
    /// Connections per client, rounded to two decimals; 0 without clients.
    public var averageConnectionsPerClient: Double
    public var nodes: [NodeAnswer]
    public var thisNode: NodeCountersAnswer

    public init(
        totalConnections: Int,
        totalClients: Int,
        averageConnectionsPerClient: Double,
        nodes: [NodeAnswer],
        thisNode: NodeCountersAnswer
    ) {
        self.totalConnections = totalConnections
        self.totalClients = totalClients
        self.averageConnectionsPerClient = averageConnectionsPerClient
        self.nodes = nodes
        self.thisNode = thisNode
    }
}
