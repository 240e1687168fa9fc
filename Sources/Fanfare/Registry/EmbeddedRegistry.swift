/// The registry of an embedded node: itself, from its own counts.
struct EmbeddedRegistry: ClusterRegistry {
    let identity: NodeIdentity
    let hub: NodeHub

    func refresh() async {}

    func snapshot() async throws -> ClusterSnapshot {
        let counts = try await self.hub.snapshot()
        var clients: [String: Int] = [:]
        for (channel, count) in counts.channels where channel.hasPrefix("client:") {
            clients[String(channel.dropFirst("client:".count))] = count
        }
        let row = self.identity.row(counts)
        return ClusterSnapshot(nodes: [row], clients: clients)
    }

    func client(_ id: String) async throws -> [(node: String, connections: Int)] {
        let count = try await self.hub.connections(on: ChannelName.client(id))
        return count > 0 ? [(self.identity.id, count)] : []
    }

    func connections(on channel: String) async throws -> Int {
        try await self.hub.connections(on: channel)
    }

    /// Read beside the publish, from the hub's loop (``connections(on:)``).
    func knownConnections(on channel: String) -> Int? { nil }

    func leave() async {}
}
