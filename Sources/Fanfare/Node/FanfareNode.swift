internal import HiredisNIO
public import Logging
public import NIOCore
internal import NIOHTTP1
internal import NIOPosix
public import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One Fanfare node: the HTTP/SSE server, its hub, its bus and its registry row.
///
/// Without a Redis URL it runs embedded (one node, in-memory bus). As a `Service` it
/// runs until graceful shutdown; tests call ``start()`` and ``shutdown()`` directly.
public final class FanfareNode: Service, Sendable {
    public static let version = "0.1.0"

    public let configuration: FanfareConfiguration
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let state = Mutex<RunState>(RunState())

    private struct RunState {
        var server: (any Channel)?
        var operations: (any Channel)?
        var services: NodeServices?
        var registryTask: Task<Void, Never>?
    }

    public init(configuration: FanfareConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.eventLoops))
    }

    /// The address the server is bound to, once started.
    public var localAddress: SocketAddress? {
        self.state.withLock { $0.server?.localAddress }
    }

    /// The operations address (`/metrics`, `/healthz`, `/readyz`), when one is configured.
    public var operationsAddress: SocketAddress? {
        self.state.withLock { $0.operations?.localAddress }
    }

    /// Binds the server and connects the bus; returns the bound address.
    @discardableResult
    public func start() async throws -> SocketAddress {
        var logger = self.logger
        logger[metadataKey: "node.id"] = "\(self.configuration.nodeID)"
        let names = RedisNames(prefix: self.configuration.redisPrefix)
        let busLoop = self.group.next()

        // The hub and the bus refer to each other through closures set up below.
        let bus: any EventBus
        var redisBus: RedisEventBus?
        let counter = HubCounter()
        if let url = self.configuration.redisURL {
            let redis = try RedisConfiguration(url: url)
            let made = RedisEventBus(
                configuration: redis,
                names: names,
                historyMaxLength: self.configuration.historyMaxLength,
                historyMaxAgeSeconds: self.configuration.historyMaxAgeSeconds,
                eventLoop: busLoop,
                logger: logger
            )
            redisBus = made
            bus = made
        } else {
            bus = EmbeddedEventBus(
                eventLoop: busLoop,
                historyMaxLength: self.configuration.historyMaxLength,
                historyMaxAgeSeconds: self.configuration.historyMaxAgeSeconds
            ) {
                channel in counter.hub?.connections(on: channel) ?? 0
            }
        }
        let metrics = NodeMetrics(nodeID: self.configuration.nodeID)
        let hub = NodeHub(group: self.group, stagingLoop: busLoop, bus: bus, metrics: metrics, logger: logger)
        counter.hub = hub
        let hubLogger = logger
        try await bus.start(
            deliver: { channel, frame in hub.receive(channel: channel, frame: frame) },
            resubscribed: {
                metrics.redisReconnects.increment()
                hub.backfillAfterReconnect(logger: hubLogger)
            }
        )

        let authenticator = try await Authenticator(security: self.configuration.security)
        let split = self.configuration.opsPort != nil
        let server = try await self.bind(
            host: self.configuration.host,
            port: self.configuration.port,
            role: split ? .api : .all
        )
        var operations: (any Channel)?
        if let opsPort = self.configuration.opsPort {
            operations = try await self.bind(
                host: self.configuration.opsHost ?? "127.0.0.1",
                port: opsPort,
                role: .operations
            )
        }
        let address = server.localAddress
        let identity = NodeIdentity(
            id: self.configuration.nodeID,
            address: "\(Self.advertisedHost(self.configuration.host)):\(address?.port ?? self.configuration.port)",
            version: Self.version,
            startedAt: WallClock.milliseconds()
        )
        let registry: any ClusterRegistry
        if let redisBus {
            registry = RedisRegistry(
                identity: identity,
                hub: hub,
                bus: redisBus,
                names: names,
                interval: .nanoseconds(self.configuration.registryInterval.nanoseconds),
                ttlMilliseconds: self.configuration.registryTTL.nanoseconds / 1_000_000,
                logger: logger
            )
        } else {
            registry = EmbeddedRegistry(identity: identity, hub: hub)
        }
        let services = NodeServices(
            configuration: self.configuration,
            identity: identity,
            hub: hub,
            registry: registry,
            isEmbedded: redisBus == nil,
            metrics: metrics,
            authenticator: authenticator,
            group: self.group,
            logger: logger
        )
        self.servicesBox.set(services)
        hub.startHeartbeats(every: self.configuration.heartbeatInterval, frame: self.heartbeatFrame())
        // The registry refreshes on its own schedule for the node's whole life.
        let registryTask = Task { await registry.run() }
        self.state.withLock {
            $0.server = server
            $0.operations = operations
            $0.services = services
            $0.registryTask = registryTask
        }
        if redisBus == nil {
            logger.notice("fanfare.embedded", metadata: ["reason": "no Redis URL: one node, in-memory bus"])
        }
        if self.configuration.security.isAnonymous {
            logger.warning(
                "fanfare.auth.anonymous",
                metadata: [
                    "warning":
                        "ANONYMOUS DEVELOPMENT MODE: no JWT secret, public key, publisher or admin key is configured; anyone who reaches this node may subscribe to any channel, publish, and read the client list"
                ]
            )
        } else {
            var access: Logger.Metadata = [:]
            for (key, value) in authenticator.summary { access[key] = "\(value)" }
            logger.info("fanfare.auth", metadata: access)
        }
        if let operations {
            logger.info(
                "fanfare.operations",
                metadata: ["address": "\(operations.localAddress.map { "\($0)" } ?? "?")"]
            )
        }
        logger.info("fanfare.started", metadata: ["address": "\(address.map { "\($0)" } ?? "?")"])
        guard let address else { throw FanfareError(.internal, "the server has no local address") }
        return address
    }

    /// Set once `start` built the services; read by each new connection.
    private let servicesBox = ServicesBox()

    private func bind(host: String, port: Int, role: FanfareHTTPHandler.Role) async throws -> any Channel {
        let limit = self.configuration.slowConsumerBytes
        let servicesBox = self.servicesBox
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldSize = self.configuration.limits.maxHeaderBytes
        limits.maxHeaderListSize = self.configuration.limits.maxHeaderBytes
        let decoderLimits = limits
        let bootstrap = ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: limit / 2, high: limit))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let services = servicesBox.get() else {
                        throw FanfareError(.unavailable, "the node is starting")
                    }
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(HTTPResponseEncoder(), name: FanfareHTTPHandler.encoderName)
                    try sync.addHandler(
                        ByteToMessageHandler(
                            HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes, limitConfiguration: decoderLimits)
                        ),
                        name: FanfareHTTPHandler.decoderName
                    )
                    try sync.addHandler(FanfareHTTPHandler(services: services, role: role))
                }
            }
        return try await bootstrap.bind(host: host, port: port).get()
    }

    /// The host other people should use: the machine's name when bound to every interface.
    private static func advertisedHost(_ host: String) -> String {
        guard host == "0.0.0.0" || host == "::" else { return host }
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count) == 0 else { return host }
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func heartbeatFrame() -> ByteBuffer {
        var frame = ByteBuffer()
        if self.configuration.heartbeatAsEvent {
            frame.writeStaticString("event: __heartbeat\ndata: {}\n\n")
        } else {
            frame.writeStaticString(": heartbeat\n\n")
        }
        return frame
    }

    /// Drains and stops, within ``FanfareConfiguration/drainTimeout``:
    ///
    /// 1. `/readyz` turns false and new streams get 503 (a proxy tries another node);
    /// 2. every stream gets a `retry:` with jitter and is closed, so its client resumes
    ///    elsewhere by Last-Event-ID;
    /// 3. once the streams are gone (or half the deadline passed) the node leaves the
    ///    registry, keeps answering for ``FanfareConfiguration/drainGrace``, stops
    ///    listening and closes Redis.
    public func shutdown() async {
        let (server, operations, services, registryTask) = self.state.withLock { state in
            defer { state = RunState() }
            return (state.server, state.operations, state.services, state.registryTask)
        }
        let clock = ContinuousClock()
        let start = clock.now
        let budget = Duration.nanoseconds(self.configuration.drainTimeout.nanoseconds)
        if let services {
            services.draining.store(true, ordering: .relaxed)
            self.logger.notice(
                "fanfare.draining",
                metadata: [
                    "node.id": "\(self.configuration.nodeID)",
                    "streams": "\(services.hub.snapshot().connections)",
                ]
            )
            services.hub.stopHeartbeats()
            services.hub.closeAllStreams(retryJitterMilliseconds: self.configuration.drainRetryJitterMilliseconds)
            while services.hub.snapshot().connections > 0, clock.now - start < budget / 2 {
                try? await Task.sleep(for: .milliseconds(20))
            }
            registryTask?.cancel()
            // Leaving talks to Redis; it must not hold the node past its deadline.
            await Self.within(budget - (clock.now - start)) { await services.registry.leave() }
            let grace = min(
                Duration.nanoseconds(self.configuration.drainGrace.nanoseconds),
                budget - (clock.now - start)
            )
            if grace > .zero { try? await Task.sleep(for: grace) }
        }
        try? await server?.close()
        try? await operations?.close()
        if let services {
            await Self.within(budget - (clock.now - start)) { await services.bus.shutdown() }
        }
        try? await self.group.shutdownGracefully()
        self.logger.notice(
            "fanfare.stopped",
            metadata: ["node.id": "\(self.configuration.nodeID)", "drain": "\(clock.now - start)"]
        )
    }

    /// Runs `body`, but returns after `limit` even if it has not finished by then.
    private static func within(_ limit: Duration, _ body: @escaping @Sendable () async -> Void) async {
        guard limit > .zero else { return }
        let (finished, continuation) = AsyncStream<Void>.makeStream()
        Task {
            await body()
            continuation.yield()
        }
        let timer = Task {
            try? await Task.sleep(for: limit)
            continuation.yield()
        }
        for await _ in finished { break }
        timer.cancel()
    }

    public func run() async throws {
        try await self.start()
        try? await gracefulShutdown()
        await self.shutdown()
    }
}

/// Lets the embedded bus ask the hub (made after it) for counts. Weak: the hub owns the
/// bus, so a strong reference here would keep both alive forever.
private final class HubCounter: @unchecked Sendable {
    // @unchecked: `hub` is written once in `start()` before the bus is started, and
    // only read afterwards.
    weak var hub: NodeHub?
}

/// The node's services, published to the connection initializer once built.
private final class ServicesBox: Sendable {
    private let services = Mutex<NodeServices?>(nil)
    func set(_ services: NodeServices) { self.services.withLock { $0 = services } }
    func get() -> NodeServices? { self.services.withLock { $0 } }
}
