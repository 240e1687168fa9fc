/// The answer of `GET /api/sse/clients`: every connected client id, cluster-wide.
public struct ClientsAnswer: Codable, Sendable, Hashable {
    /// One client id and its connections over all nodes.
    public struct Client: Codable, Sendable, Hashable {
        public var clientId: String
        public var connections: Int

        public init(clientId: String, connections: Int) {
            self.clientId = clientId
            self.connections = connections
        }
    }

    public var totalClients: Int
    /// Sorted by client id.
    public var clients: [Client]

    public init(clients: [Client]) {
        self.totalClients = clients.count
        self.clients = clients
    }
}
