internal import Logging
internal import NIOCore
import Synchronization

/// What every connection of a node shares: its settings, identity, hub, registry,
/// credentials and limits. Immutable apart from atomic counters and flags.
final class NodeContext: Sendable {
    let configuration: FanfareConfiguration
    let identity: NodeIdentity
    let hub: NodeHub
    /// What the delivery check found.
    var health: NodeHealth { self.identity.health }
    let registry: any ClusterRegistry
    /// Per-user places and presence across the cluster.
    let leases: any ClusterLeases
    let isEmbedded: Bool
    let logger: Logger
    let metrics: NodeMetrics
    let authenticator: Authenticator
    let cors: CORSPolicy
    let connectionLimiter: ConnectionLimiter
    let publishLimiter: PublishRateLimiter
    /// Where async route code runs: on the connection's own loop.
    let taskExecutors: EventLoopTaskExecutors
    private let draining = Atomic<Bool>(false)

    init(
        configuration: FanfareConfiguration,
        identity: NodeIdentity,
        hub: NodeHub,
        registry: any ClusterRegistry,
        leases: any ClusterLeases,
        isEmbedded: Bool,
        metrics: NodeMetrics,
        authenticator: Authenticator,
        group: any EventLoopGroup,
        logger: Logger
    ) {
        self.taskExecutors = EventLoopTaskExecutors(group: group)
        self.metrics = metrics
        self.authenticator = authenticator
        self.cors = CORSPolicy(
            origins: configuration.corsOrigins,
            allowCredentials: configuration.security.corsAllowCredentials
        )
        self.connectionLimiter = ConnectionLimiter(limits: configuration.limits)
        self.publishLimiter = PublishRateLimiter(rate: configuration.limits.publishesPerSecond)
        self.configuration = configuration
        self.identity = identity
        self.hub = hub
        self.registry = registry
        self.leases = leases
        self.isEmbedded = isEmbedded
        self.logger = logger
    }

    var bus: any EventBus { self.hub.bus }

    /// Set once a drain began: `/readyz` turns false and new streams get 503.
    var isDraining: Bool { self.draining.load(ordering: .relaxed) }

    func startDraining() { self.draining.store(true, ordering: .relaxed) }

    /// Ready to serve: not draining, and (in a cluster) Redis reachable and delivery proven.
    var isReady: Bool { self.notReadyReason == nil }

    /// Why the node is not ready, or `nil` when it is.
    var notReadyReason: String? {
        if self.isDraining { return "the node is draining" }
        if !self.bus.isReady { return "Redis is not reachable, or the node's subscriber is reconnecting" }
        let health = self.health
        switch health.delivery {
        case .off, .ok: return nil
        case .unproven: return "no delivery probe has come back through the subscriber yet"
        case .stalled: return "delivery stalled: " + (health.reason ?? "a probe did not come back")
        }
    }
}
