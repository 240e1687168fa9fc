import Synchronization

/// What a node says about itself in the registry. The address is learnt once, when the
/// HTTP server has bound its port.
final class NodeIdentity: Sendable {
    let id: String
    let version: String
    /// Milliseconds since 1970 when the node started.
    let startedAt: Int64
    /// What the delivery check found, for the row.
    let health: NodeHealth
    /// The node's counters, for the row's totals.
    let metrics: NodeMetrics?
    private let boundAddress = Mutex("")

    init(id: String, version: String, startedAt: Int64, health: NodeHealth, metrics: NodeMetrics? = nil) {
        self.metrics = metrics
        self.id = id
        self.version = version
        self.startedAt = startedAt
        self.health = health
    }

    /// `host:port` others reach the node at; empty until the server listens.
    var address: String { self.boundAddress.withLock { $0 } }

    func announce(address: String) {
        self.boundAddress.withLock { $0 = address }
    }

    /// This node's registry row with `counts`, seen now.
    func row(_ counts: NodeHub.Counts) -> NodeRow {
        NodeRow(
            id: self.id,
            address: self.address,
            version: self.version,
            startedAt: self.startedAt,
            connections: counts.connections,
            clients: counts.clients,
            lastSeen: WallClock.milliseconds(),
            delivering: self.health.isDelivering,
            published: self.metrics?.eventsPublished.current,
            delivered: self.metrics?.deliveries.current
        )
    }
}
