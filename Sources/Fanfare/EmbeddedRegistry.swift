/// The registry of an embedded node: itself, from its own counts.
struct EmbeddedRegistry: ClusterRegistry {
    let identity: NodeIdentity
    let hub: NodeHub

    func run() async {}

    func snapshot() async throws -> ClusterSnapshot {
        let counts = self.hub.snapshot()
        var clients: [String: Int] = [:]
        for (channel, count) in counts.channels where channel.hasPrefix("client:") {
            clients[String(channel.dropFirst("client:".count))] = count
        }
        let row = NodeRow(
            id: self.identity.id,
            address: self.identity.address,
            version: self.identity.version,
            startedAt: self.identity.startedAt,
            connections: counts.connections,
            clients: counts.clients,
            lastSeen: WallClock.milliseconds()
        )
        return ClusterSnapshot(nodes: [row], clients: clients)
    }

    func client(_ id: String) async throws -> [(node: String, connections: Int)] {
        let count = self.hub.connections(on: ChannelName.client(id))
        return count > 0 ? [(self.identity.id, count)] : []
    }

    func leave() async {}
}
