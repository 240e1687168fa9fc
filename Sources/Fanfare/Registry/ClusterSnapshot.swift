/// Cluster-wide counts, answerable from any node.
struct ClusterSnapshot: Sendable, Hashable {
    var nodes: [NodeRow]
    /// Connections per client id, summed over nodes.
    var clients: [String: Int]

    var totalConnections: Int { self.nodes.reduce(0) { $0 + $1.connections } }
}
