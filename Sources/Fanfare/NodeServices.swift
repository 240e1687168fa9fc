internal import Logging
internal import NIOCore
import Synchronization

/// What every connection of a node shares. Immutable apart from atomic counters.
final class NodeServices: Sendable {
    let configuration: FanfareConfiguration
    let identity: NodeIdentity
    let hub: NodeHub
    let registry: any ClusterRegistry
    let isEmbedded: Bool
    let logger: Logger
    let metrics: NodeMetrics
    let draining = Atomic<Bool>(false)

    init(
        configuration: FanfareConfiguration,
        identity: NodeIdentity,
        hub: NodeHub,
        registry: any ClusterRegistry,
        isEmbedded: Bool,
        metrics: NodeMetrics,
        logger: Logger
    ) {
        self.metrics = metrics
        self.configuration = configuration
        self.identity = identity
        self.hub = hub
        self.registry = registry
        self.isEmbedded = isEmbedded
        self.logger = logger
    }

    var bus: any EventBus { self.hub.bus }

    /// Ready to serve: not draining, and (in a cluster) Redis reachable.
    var isReady: Bool { !self.draining.load(ordering: .relaxed) && self.bus.isReady }

    /// CORS: the origin to reflect, or `nil` when the request's origin is not allowed.
    func allowedOrigin(_ origin: String?) -> String? {
        guard let origin, !origin.isEmpty else { return nil }
        let allowed = self.configuration.corsOrigins
        return allowed.contains("*") || allowed.contains(origin) ? origin : nil
    }
}
