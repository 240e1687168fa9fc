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
    let authenticator: Authenticator
    let connectionLimiter: ConnectionLimiter
    let publishLimiter: PublishRateLimiter
    /// Where async route code runs: on the connection's own loop.
    let taskExecutors: EventLoopTaskExecutors
    let draining = Atomic<Bool>(false)

    init(
        configuration: FanfareConfiguration,
        identity: NodeIdentity,
        hub: NodeHub,
        registry: any ClusterRegistry,
        isEmbedded: Bool,
        metrics: NodeMetrics,
        authenticator: Authenticator,
        group: any EventLoopGroup,
        logger: Logger
    ) {
        self.taskExecutors = EventLoopTaskExecutors(group: group)
        self.metrics = metrics
        self.authenticator = authenticator
        self.connectionLimiter = ConnectionLimiter(limits: configuration.limits)
        self.publishLimiter = PublishRateLimiter(rate: configuration.limits.publishesPerSecond)
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
    /// Allowed are `*` (any), an exact origin, or `*.example.com` (any subdomain, any
    /// scheme and port).
    func allowedOrigin(_ origin: String?) -> String? {
        guard let origin, !origin.isEmpty, origin != "null" else { return nil }
        let host = Self.host(ofOrigin: origin)
        for pattern in self.configuration.corsOrigins {
            if pattern == "*" || pattern == origin { return origin }
            if pattern.hasPrefix("*."), let host, host.hasSuffix(pattern.dropFirst()) { return origin }
        }
        return nil
    }

    /// `https://a.example.com:8443` → `a.example.com`.
    private static func host(ofOrigin origin: String) -> String? {
        let parts = origin.split(separator: "/", omittingEmptySubsequences: true)
        guard parts.count >= 2, parts[0].hasSuffix(":") else { return nil }
        return String(parts[1].prefix { $0 != ":" })
    }

    /// The CORS headers for a response to `origin` (none when it is not allowed).
    func corsHeaders(origin: String?) -> [(String, String)] {
        guard let allowed = self.allowedOrigin(origin) else { return [] }
        var headers = [("Access-Control-Allow-Origin", allowed), ("Vary", "Origin")]
        if self.configuration.security.corsAllowCredentials {
            headers.append(("Access-Control-Allow-Credentials", "true"))
        }
        return headers
    }
}
