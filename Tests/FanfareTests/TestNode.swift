import Logging
import NIOCore
import NIOPosix

@testable import Fanfare

/// An embedded node's shared parts for tests without sockets; nothing listens.
enum TestNode {
    static func context(
        _ configure: (inout FanfareConfiguration) -> Void = { _ in }
    ) async throws -> (NodeContext, MultiThreadedEventLoopGroup) {
        var configuration = FanfareConfiguration(host: "127.0.0.1", port: 0, nodeID: "node-test", eventLoops: 1)
        configure(&configuration)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let bus = EmbeddedEventBus(eventLoop: group.next(), policy: configuration.historyPolicy)
        let metrics = NodeMetrics(nodeID: configuration.nodeID)
        let hub = NodeHub(group: group, busLoop: group.next(), bus: bus, metrics: metrics, logger: logger)
        let identity = NodeIdentity(
            id: configuration.nodeID,
            version: "test",
            startedAt: 0,
            health: NodeHealth(checked: false)
        )
        let context = NodeContext(
            configuration: configuration,
            identity: identity,
            hub: hub,
            registry: EmbeddedRegistry(identity: identity, hub: hub),
            leases: EmbeddedLeases(bus: bus, hub: hub),
            isEmbedded: true,
            metrics: metrics,
            authenticator: try await Authenticator(security: configuration.security),
            group: group,
            logger: logger
        )
        return (context, group)
    }
}
