internal import Logging
internal import NIOCore
internal import NIOHTTP1
internal import NIOPosix
internal import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The node's listeners as a service: once the bus is connected it binds the public
/// address (and the operations address, when one is configured); on graceful shutdown,
/// after the streams were drained and the registry row removed, it keeps answering for
/// the drain grace, then stops listening.
struct HTTPServer: Service {
    let node: NodeContext
    let group: any EventLoopGroup
    let busStarted: AsyncSignal<Void>
    let budget: ShutdownBudget
    /// Set once the public listener is bound: its address, as others should use it.
    let listening: AsyncSignal<SocketAddress>
    let operationsListening: AsyncSignal<SocketAddress?>

    func run() async throws {
        let configuration = self.node.configuration
        do {
            try await cancelWhenGracefulShutdown { try await self.busStarted.wait() }
        } catch {
            self.listening.fail(error)
            self.operationsListening.fail(error)
            if Task.isShuttingDownGracefully { return }  // shut down before it started
            throw error
        }
        var listeners: [any Channel] = []
        do {
            let split = configuration.opsPort != nil
            listeners.append(
                try await self.bind(host: configuration.host, port: configuration.port, role: split ? .api : .all)
            )
            if let opsPort = configuration.opsPort {
                listeners.append(
                    try await self.bind(host: configuration.opsHost ?? "127.0.0.1", port: opsPort, role: .operations)
                )
            }
        } catch {
            for listener in listeners { try? await listener.close() }
            let failure = FanfareError(.unavailable, "the node cannot listen on its address", underlying: error)
            self.listening.fail(failure)
            self.operationsListening.fail(failure)
            throw failure
        }
        guard let address = listeners[0].localAddress else {
            let error = FanfareError(.internalError, "the server has no local address")
            self.listening.fail(error)
            self.operationsListening.fail(error)
            throw error
        }
        self.node.identity.announce(
            address: "\(Self.advertisedHost(configuration.host)):\(address.port ?? configuration.port)"
        )
        let operations = listeners.count > 1 ? listeners[1].localAddress : nil
        if let operations {
            self.node.logger.info("fanfare.operations", metadata: ["address": "\(operations)"])
        }
        self.node.logger.info("fanfare.started", metadata: ["address": "\(address)"])
        // Heartbeats from now on, one timer per loop.
        self.node.hub.startHeartbeats(
            every: configuration.heartbeatInterval,
            frame: ControlFrame.heartbeat(asEvent: configuration.heartbeatAsEvent)
        )
        self.operationsListening.succeed(operations)
        self.listening.succeed(address)

        try? await gracefulShutdown()
        // Still answering (not ready, new streams 503) for health-checking load balancers.
        let grace = min(Duration.nanoseconds(configuration.drainGrace.nanoseconds), self.budget.remaining)
        if grace > .zero, !Task.isCancelled { try? await Task.sleep(for: grace) }
        for listener in listeners { try? await listener.close() }
    }

    private func bind(host: String, port: Int, role: FanfareHTTPHandler.Role) async throws -> any Channel {
        let node = self.node
        let limit = node.configuration.slowConsumerBytes
        return try await ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: limit / 2, high: limit))
            // A connection keeps its last read buffer for the next read: for a stream, which
            // reads nothing after its request, that buffer is idle memory held for its whole
            // life. Reads start at 512 bytes (a stream's request fits) instead of 2 KiB,
            // and grow, as before, for connections that send more (publishes, batches).
            .childChannelOption(
                .recvAllocator,
                value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 65_536)
            )
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try FanfareHTTPHandler.configure(channel.pipeline.syncOperations, node: node, role: role)
                }
            }
            .bind(host: host, port: port).get()
    }

    /// The host other people should use: the machine's name when bound to every interface.
    private static func advertisedHost(_ host: String) -> String {
        guard host == "0.0.0.0" || host == "::" else { return host }
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count) == 0 else { return host }
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
