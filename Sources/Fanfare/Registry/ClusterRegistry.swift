/// Where nodes record themselves and their counts: Redis for a cluster, the node's own
/// counts when embedded. ``RegistryService`` drives ``refresh()`` and ``leave()``.
protocol ClusterRegistry: Sendable {
    /// Writes this node's row (and its counts, if they changed) once.
    func refresh() async
    /// Every live node and the connections per client.
    func snapshot() async throws -> ClusterSnapshot
    /// One client's connections per node.
    func client(_ id: String) async throws -> [(node: String, connections: Int)]
    /// A channel's streams on every live node (for publish answers; may be a second old).
    func connections(on channel: String) async throws -> Int
    /// The count of `channel` when it is known without asking Redis (recent enough), else
    /// `nil`: the publish path answers at once with it.
    func knownConnections(on channel: String) -> Int?
    /// Removes this node's row at once.
    func leave() async
}
