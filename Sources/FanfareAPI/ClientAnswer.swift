/// The answer of `GET /api/sse/clients/{id}`: one client's connections, per node.
public struct ClientAnswer: Codable, Sendable, Hashable {
    /// The client's connections on one node.
    public struct Node: Codable, Sendable, Hashable {
        public var nodeId: String
        public var connections: Int

        public init(nodeId: String, connections: Int) {
            self.nodeId = nodeId
            self.connections = connections
        }
    }

    public var clientId: String
    /// Over all nodes.
    public var connections: Int
    public var nodes: [Node]

    public init(clientId: String, nodes: [Node]) {
        self.clientId = clientId
        self.connections = nodes.reduce(0) { $0 + $1.connections }
        self.nodes = nodes
    }
}
