internal import FanfareAPI
internal import HiredisNIO
public import Logging
public import NIOCore
internal import NIOPosix
internal import ServiceLifecycle
import Synchronization
public import UnixSignals

/// One Fanfare node: the HTTP/SSE server, its hub, its bus and its registry row.
///
/// Without a Redis URL it runs embedded (one node, in-memory bus). Its parts are services
/// in one `ServiceGroup`, started in this order and drained in the reverse one:
///
/// 1. ``BusService`` — connects the bus; closed last;
/// 2. ``HTTPServer`` — listens once the bus is connected; on shutdown keeps answering for
///    the drain grace, then stops listening;
/// 3. ``RegistryService`` — refreshes the node's registry row; on shutdown removes it;
/// 4. ``StreamDrain`` — on shutdown marks the node draining, tells every stream to come
///    back elsewhere and waits until they are gone.
///
/// ``run()`` runs the group until a graceful shutdown (one of the signals given to the
/// initializer, or ``triggerGracefulShutdown()``) has drained the node, within
/// ``FanfareConfiguration/drainTimeout``; then it stops the node's event loops.
public final class FanfareNode: Sendable {
    public static let version = "0.1.0"

    public let configuration: FanfareConfiguration
    private let logger: Logger
    private let eventLoopGroup: MultiThreadedEventLoopGroup
    private let serviceGroup: ServiceGroup
    private let budget: ShutdownBudget
    private let listening: AsyncSignal<SocketAddress>
    private let operationsListening: AsyncSignal<SocketAddress?>
    private let started = Atomic<Bool>(false)

    /// Checks the configuration and builds the node's parts, including its event loops;
    /// nothing is connected or bound until ``run()``, which also stops the loops when it
    /// returns (so call it). Throws ``FanfareError`` with a sentence for a setting that
    /// cannot work.
    public init(
        configuration: FanfareConfiguration,
        logger: Logger,
        gracefulShutdownSignals: [UnixSignal] = []
    ) async throws {
        var logger = logger
        logger[metadataKey: "node.id"] = "\(configuration.nodeID)"
        try configuration.validate()
        let authenticator = try await Authenticator(security: configuration.security)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoops)
        let names = RedisNames(prefix: configuration.redisPrefix)
        let busLoop = group.next()
        let metrics = NodeMetrics(nodeID: configuration.nodeID)
        let checksDelivery = configuration.redisURL != nil && configuration.deliveryProbeInterval > .zero
        let health = NodeHealth(
            checked: checksDelivery,
            replicasWanted: configuration.redisURL == nil ? 0 : configuration.effectiveReplicaAcks
        )
        let identity = NodeIdentity(
            id: configuration.nodeID,
            version: Self.version,
            startedAt: WallClock.milliseconds(),
            health: health,
            metrics: metrics
        )

        let bus: any EventBus
        var redisBus: RedisEventBus?
        if let url = configuration.redisURL {
            var redis: RedisConfiguration
            do {
                redis = try RedisConfiguration(url: url)
            } catch {
                try await group.shutdownGracefully()
                throw FanfareError(.invalidConfiguration, "the Redis URL cannot be used", underlying: error)
            }
            do {
                redis.tls = try configuration.redisTLS.redisTLS(for: url)
            } catch {
                try await group.shutdownGracefully()
                throw error
            }
            if redis.tls != nil {
                if configuration.redisTLS.insecure {
                    logger.warning(
                        "redis.tls.insecure",
                        metadata: [
                            "effect":
                                "Redis's certificate is not checked: anyone on the path to Redis can read and change what the node sends and gets"
                        ]
                    )
                }
            }
            let made = RedisEventBus(
                configuration: redis,
                names: names,
                policy: configuration.historyPolicy,
                eventLoop: busLoop,
                commandLoops: Array(group.makeIterator()),
                replicaAcks: (configuration.effectiveReplicaAcks, configuration.replicaAckTimeout),
                logger: logger
            )
            redisBus = made
            bus = made
        } else {
            bus = EmbeddedEventBus(eventLoop: busLoop, policy: configuration.historyPolicy)
        }
        let hub = NodeHub(
            group: group,
            busLoop: busLoop,
            bus: bus,
            metrics: metrics,
            bufferLimit: configuration.liveBufferEvents,
            pageSize: configuration.historyPageSize,
            pageBytes: configuration.historyPageBytes,
            bufferBytes: configuration.slowConsumerBytes,
            writeDelay: configuration.writeDelay,
            logger: logger
        )

        let registry: any ClusterRegistry
        if let redisBus {
            registry = RedisRegistry(
                identity: identity,
                hub: hub,
                bus: redisBus,
                names: names,
                ttlMilliseconds: configuration.registryTTL.nanoseconds / 1_000_000,
                logger: logger
            )
        } else {
            registry = EmbeddedRegistry(identity: identity, hub: hub)
        }
        let leases: any ClusterLeases =
            if let redisBus {
                RedisLeases(
                    bus: redisBus,
                    names: names,
                    hub: hub,
                    nodeID: configuration.nodeID,
                    limit: configuration.limits.connectionsPerUser,
                    logger: logger
                )
            } else {
                EmbeddedLeases(bus: bus, hub: hub)
            }
        let node = NodeContext(
            configuration: configuration,
            identity: identity,
            hub: hub,
            registry: registry,
            leases: leases,
            isEmbedded: redisBus == nil,
            metrics: metrics,
            authenticator: authenticator,
            group: group,
            logger: logger
        )
        let budget = ShutdownBudget(total: .nanoseconds(configuration.drainTimeout.nanoseconds))
        let busStarted = AsyncSignal<Void>()
        let listening = AsyncSignal<SocketAddress>()
        let operationsListening = AsyncSignal<SocketAddress?>()
        let deliveryCheck =
            checksDelivery
            ? DeliveryCheck(
                bus: bus,
                hub: hub,
                registry: registry,
                health: health,
                metrics: metrics,
                nodeID: configuration.nodeID,
                settings: .init(
                    interval: configuration.deliveryProbeInterval,
                    timeout: configuration.deliveryTimeout,
                    grace: configuration.deliveryHandOverGrace,
                    retryJitterMilliseconds: configuration.drainRetryJitterMilliseconds
                ),
                busStarted: busStarted,
                eventLoop: busLoop,
                logger: logger
            ) : nil
        var services: [any Service] = [
            BusService(
                bus: bus,
                hub: hub,
                deliveryCheck: deliveryCheck,
                metrics: metrics,
                logger: logger,
                started: busStarted,
                replicaCheck: health.replicasWanted > 0
                    ? ReplicaCheck(
                        bus: bus,
                        health: health,
                        timeoutMilliseconds: Int(configuration.replicaAckTimeout.nanoseconds / 1_000_000),
                        logger: logger
                    ) : nil
            )
        ]
        // Stopped just before the bus: after the drain, which makes the node not ready anyway.
        if let deliveryCheck { services.append(deliveryCheck) }
        // After the drain too, so the places of the streams it closed go back at once.
        if configuration.limits.connectionsPerUser > 0 || configuration.presence {
            services.append(LeaseService(leases: leases))
        }
        services +=
            [
                HTTPServer(
                    node: node,
                    group: group,
                    busStarted: busStarted,
                    budget: budget,
                    listening: listening,
                    operationsListening: operationsListening
                ),
                RegistryService(
                    registry: registry,
                    interval: .nanoseconds(configuration.registryInterval.nanoseconds),
                    listening: listening
                ),
                StreamDrain(node: node, budget: budget),
            ] as [any Service]
        var groupConfiguration = ServiceGroupConfiguration(
            services: services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
            gracefulShutdownSignals: gracefulShutdownSignals,
            logger: logger
        )
        // Past the drain budget the group cancels what is left (a Redis that does not
        // answer, say), so a drain always ends.
        groupConfiguration.maximumGracefulShutdownDuration = budget.total
        self.serviceGroup = ServiceGroup(configuration: groupConfiguration)
        self.configuration = configuration
        self.logger = logger
        self.eventLoopGroup = group
        self.budget = budget
        self.listening = listening
        self.operationsListening = operationsListening

        if redisBus == nil {
            logger.notice("fanfare.embedded", metadata: ["reason": "no Redis URL: one node, in-memory bus"])
        }
        if configuration.security.isAnonymous {
            logger.warning(
                "fanfare.auth.anonymous",
                metadata: [
                    "warning":
                        "ANONYMOUS DEVELOPMENT MODE: no JWT secret, public key, publisher or admin key is configured; anyone who reaches this node may subscribe to any channel, publish, and read the client list"
                ]
            )
        } else {
            let access = authenticator.access
            logger.info(
                "fanfare.auth",
                metadata: [
                    "subscribe": "\(access.subscribe)", "publish": "\(access.publish)", "admin": "\(access.admin)",
                ]
            )
        }
    }

    /// Runs the node until it was shut down gracefully (and drained), or until one of its
    /// parts failed, such as a Redis that cannot be reached at start; then stops its event
    /// loops. Call it once.
    public func run() async throws {
        guard !self.started.exchange(true, ordering: .relaxed) else {
            throw FanfareError(.internalError, "the node is already running; run() is called once")
        }
        let result: Result<Void, any Error>
        do {
            try await self.serviceGroup.run()
            result = .success(())
        } catch {
            result = .failure(error)
        }
        // The listeners may never have been bound: nobody waits for them any longer.
        self.listening.fail(FanfareError(.unavailable, "the node stopped"))
        self.operationsListening.fail(FanfareError(.unavailable, "the node stopped"))
        try? await self.eventLoopGroup.shutdownGracefully()
        self.logger.notice("fanfare.stopped", metadata: ["drain": "\(self.budget.elapsed)"])
        try result.get()
    }

    /// Starts the drain, as SIGTERM would.
    public func triggerGracefulShutdown() async {
        await self.serviceGroup.triggerGracefulShutdown()
    }

    /// The address the server is bound to, once it listens; throws if the node failed to
    /// start or stopped.
    public func localAddress() async throws -> SocketAddress {
        try await self.listening.wait()
    }

    /// The operations address (`/metrics`, `/healthz`, `/readyz`), once the node listens;
    /// `nil` when none is configured.
    public func operationsAddress() async throws -> SocketAddress? {
        try await self.operationsListening.wait()
    }
}
