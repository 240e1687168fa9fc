internal import HiredisNIO
internal import Logging
internal import NIOCore
internal import NIOPosix
import Synchronization

/// The bus of a cluster node: publishes and reads history through the prefix's Redis
/// Function library on a command connection per event loop, and receives through one
/// ``RedisSubscriber`` on the node's pub/sub connection.
final class RedisEventBus: EventBus {
    private let configuration: RedisConfiguration
    let names: RedisNames
    private let policy: HistoryPolicy
    private let eventLoop: any EventLoop
    private let logger: Logger
    /// Replicas a publish must reach before it is acknowledged, and for how long to wait.
    let replicaAcks: (count: Int, timeout: TimeAmount)
    private let subscriber = Mutex<Subscription?>(nil)

    /// The node's pub/sub: one subscriber (PUBLISH), or one per primary of a cluster
    /// (SPUBLISH, each channel on its slot's primary).
    private enum Subscription: Sendable {
        case single(RedisSubscriber)
        case sharded(RedisClusterSubscriber)
    }
    /// Behind Sentinel: what tells the node the master moved (see ``masterSwitched(_:)``).
    private let watcher = Mutex<RedisSentinelWatcher?>(nil)
    /// Whether the subscriber is connected: set from its callbacks, read by `/readyz`.
    private let subscriberReady = Atomic<Bool>(false)

    /// The commands of one event loop of the node: a ``RedisClient`` whose connections (one
    /// per primary) are on that loop, so a caller on the loop (a publish, a history read)
    /// sends and gets its reply there, with no hop to another thread and back, and a
    /// publish is answered as soon as its reply is read.
    final class Lane: Sendable {
        let client: RedisClient
        /// With replica acknowledgement: the publishes' own connections, each group
        /// followed by WAIT, so that no read waits behind it.
        let replicated: ReplicatedPublisher?

        init(client: RedisClient, replicated: ReplicatedPublisher?) {
            self.client = client
            self.replicated = replicated
        }

        var clients: [RedisClient] { [self.client] + (self.replicated.map { [$0.client] } ?? []) }
    }

    /// The lanes by loop; the bus loop's serves callers that are on none of them.
    private let lanes: [ObjectIdentifier: Lane]
    var sharded: Bool { self.configuration.clusterSeeds != nil }

    init(
        configuration: RedisConfiguration,
        names: RedisNames,
        policy: HistoryPolicy,
        eventLoop: any EventLoop,
        commandLoops: [any EventLoop] = [],
        replicaAcks: (count: Int, timeout: TimeAmount) = (0, .zero),
        logger: Logger
    ) {
        self.replicaAcks = replicaAcks
        self.configuration = configuration
        self.names = names
        self.policy = policy
        self.eventLoop = eventLoop
        self.logger = logger
        // Each new connection (a restarted Redis, a new primary) gets the library first.
        let library = RedisFunctionLibrary(
            source: RedisFunctions.source(
                names: names,
                policy: policy,
                sharded: configuration.clusterSeeds != nil
            ),
            names: names,
            policy: policy,
            logger: logger
        )
        self.library = library
        var lanes: [ObjectIdentifier: Lane] = [:]
        for loop in [eventLoop] + commandLoops where lanes[ObjectIdentifier(loop)] == nil {
            let makeClient = {
                RedisClient(configuration: configuration, eventLoop: loop, logger: logger) { connection in
                    try await library.ensure(on: connection)
                }
            }
            let replicated =
                replicaAcks.count > 0
                ? ReplicatedPublisher(client: makeClient(), replicas: replicaAcks.count, timeout: replicaAcks.timeout)
                : nil
            lanes[ObjectIdentifier(loop)] = Lane(client: makeClient(), replicated: replicated)
        }
        self.lanes = lanes
    }

    private let library: RedisFunctionLibrary

    /// The lane of `eventLoop` (the caller's), or the bus loop's for a loop without one.
    func lane(on eventLoop: any EventLoop) -> Lane {
        self.lanes[ObjectIdentifier(eventLoop)] ?? self.busLane
    }

    var busLane: Lane {
        // Every lane table holds the bus loop's lane (see init).
        self.lanes[ObjectIdentifier(self.eventLoop)].unsafelyUnwrapped
    }

    /// The bus's own loop (its subscriber's, the registry's and the delivery check's).
    var busLoop: any EventLoop { self.eventLoop }

    /// The slot of a channel's keys (its history, pub/sub channel and idempotency keys).
    func slot(_ channel: String) -> Int { RedisClusterSlot.of(self.names.history(channel)) }

    /// The slot of the registry's keys.
    var registrySlot: Int { RedisClusterSlot.of(self.names.nodes) }

    /// Loads the library wherever a connection finds it missing or older.
    func ensureLibraryEverywhere(_ client: RedisClient) async throws {
        for connection in client.connections { try await self.library.ensure(on: connection) }
    }
}

extension RedisEventBus {
    /// Calls a function of the library. If Redis lost the library (restarted empty,
    /// FUNCTION FLUSH) the call ran nothing, so the library is loaded again and the call
    /// retried once.
    func fcall(
        _ function: String,
        keys: [RESPArgument],
        slot: Int,
        arguments: [RESPArgument] = [],
        on eventLoop: any EventLoop
    ) async throws -> RESPValue {
        let client = self.lane(on: eventLoop).client
        let call = [RESPArgument(self.names.function(function)), RESPArgument(keys.count)] + keys + arguments
        do {
            return try await client.send("FCALL", arguments: call, slot: slot)
        } catch let error as RedisClientError
            where error.code == .serverError && error.message.contains("Function not found")
        {
            try await self.ensureLibraryEverywhere(client)
            return try await client.send("FCALL", arguments: call, slot: slot)
        }
    }

    func start(
        deliver: @escaping @Sendable (BusEvent) -> Void,
        subscriptions: @escaping @Sendable (SubscriptionChange) -> Void,
        disconnect: @escaping @Sendable (DisconnectRequest) -> Void
    ) async throws {
        // Every primary is reached (and given the library) before the node serves.
        let client = self.busLane.client
        client.start()
        for primary in try await client.slotMap().primaries {
            _ = try await client.connection(to: primary)
        }
        for lane in self.lanes.values where lane !== self.busLane { lane.client.start() }
        for lane in self.lanes.values { lane.replicated?.client.start() }
        let names = self.names
        let pubsubNames = names
        let sharded = self.sharded
        let logger = self.logger
        let onEvent: @Sendable (RedisSubscriberEvent) -> Void = { [weak self] event in
            switch event {
            case .message(let name, let payload):
                guard let channel = names.channel(fromPubSub: name) else { return }
                if DisconnectRequest.isRequest(payload) {
                    if let request = DisconnectRequest(channel: channel, message: payload) { disconnect(request) }
                    return
                }
                guard let event = Self.event(channel: channel, payload: payload) else {
                    logger.warning("redis.message.malformed", metadata: ["channel": "\(channel)"])
                    return
                }
                deliver(event)
            case .patternMessage, .droppedByServer:
                // A cluster's subscriber follows a moved slot itself and says what it missed.
                break
            case .missed(let names):
                // A cluster's: these channels (and no others) may have missed events.
                let channels = names.compactMap { pubsubNames.channel(fromPubSub: $0) }
                logger.info("redis.subscriber.resubscribed", metadata: ["channels": "\(channels.count)"])
                subscriptions(.moved(channels))
            case .ready where sharded:
                // Every primary's subscriber is up. Each confirms its own subscribes, and
                // says what it missed (`missed`): the whole is no confirmation of anything.
                self?.subscriberReady.store(true, ordering: .relaxed)
            case .ready(let isReconnect):
                self?.subscriberReady.store(true, ordering: .relaxed)
                if isReconnect {
                    logger.info("redis.subscriber.reconnected")
                    subscriptions(.reconnected)
                } else {
                    // Subscribes that failed while the subscriber was still connecting are
                    // confirmed now: their channels must hear it (no reconnect will come).
                    subscriptions(.ready)
                }
            case .disconnected(let error):
                self?.subscriberReady.store(false, ordering: .relaxed)
                logger.warning("redis.subscriber.disconnected", metadata: ["error": "\(error)"])
            }
        }
        let subscription: Subscription
        if self.sharded {
            let subscriber = RedisClusterSubscriber(
                client: client,
                configuration: .init(redis: self.configuration),
                eventLoop: self.eventLoop,
                logger: self.logger,
                onEvent: onEvent
            )
            subscription = .sharded(subscriber)
            subscriber.start()
        } else {
            let subscriber = RedisSubscriber(
                configuration: .init(redis: self.configuration),
                eventLoop: self.eventLoop,
                logger: self.logger,
                onEvent: onEvent
            )
            subscription = .single(subscriber)
            subscriber.start()
        }
        self.subscriber.withLock { $0 = subscription }
        if let sentinel = self.configuration.sentinel {
            let watcher = RedisSentinelWatcher(
                sentinel: sentinel,
                master: self.configuration,
                eventLoop: self.eventLoop,
                logger: self.logger
            ) { [weak self] change in
                self?.masterSwitched(change)
            }
            self.watcher.withLock { $0 = watcher }
            watcher.start()
        }
    }

    /// Sentinel promoted another server: every connection not already there goes there now,
    /// rather than when it next fails. The old master may be alive but cut off, taking writes no node will
    /// read, and the subscriber may be waiting out a back-off built up while there was no
    /// master. Its reconnect reports missed messages, so every channel is backfilled from
    /// the new master (and a position it lacks gets `__reset`).
    private func masterSwitched(_ change: RedisSentinelWatcher.Switch) {
        self.logger.warning(
            "fanfare.redis.master.switched",
            metadata: ["redis.master": "\(change.new)", "redis.master.old": "\(change.old)"]
        )
        for lane in self.lanes.values {
            for client in lane.clients { client.reconnect(to: change.new) }
        }
        if case .single(let subscriber) = self.subscriber.withLock({ $0 }) { subscriber.reconnect(to: change.new) }
    }

    /// A pub/sub message `<position> <predecessor>\n<body>` as an event; a final event's
    /// says ` f` after the predecessor.
    static func event(channel: String, payload: ByteBuffer) -> BusEvent? {
        var payload = payload
        let view = payload.readableBytesView
        guard let space = view.firstIndex(of: UInt8(ascii: " ")),
            let newline = view[space...].firstIndex(of: UInt8(ascii: "\n")),
            let position = StreamPosition(String(decoding: view[view.startIndex..<space], as: UTF8.self))
        else { return nil }
        var end = newline
        let isFinal =
            newline - space > 2 && view[newline - 1] == UInt8(ascii: "f") && view[newline - 2] == UInt8(ascii: " ")
        if isFinal { end = newline - 2 }
        guard let predecessor = StreamPosition(String(decoding: view[(space + 1)..<end], as: UTF8.self)) else {
            return nil
        }
        payload.moveReaderIndex(forwardBy: newline - view.startIndex + 1)
        return BusEvent(channel: channel, position: position, predecessor: predecessor, body: payload, isFinal: isFinal)
    }

    func subscribe(_ channels: [String]) -> EventLoopFuture<Void> {
        let names = channels.map(self.names.pubsubChannel)
        switch self.subscriber.withLock({ $0 }) {
        case .none:
            return self.eventLoop.makeFailedFuture(FanfareError(.unavailable, "the bus is not started"))
        case .single(let subscriber):
            return subscriber.subscribeFuture(.channel, names)
        case .sharded(let subscriber):
            return subscriber.subscribeFuture(names)
        }
    }

    func unsubscribe(_ channels: [String]) {
        let names = channels.map(self.names.pubsubChannel)
        switch self.subscriber.withLock({ $0 }) {
        case .none: break
        case .single(let subscriber): subscriber.unsubscribe(names)
        case .sharded(let subscriber): subscriber.unsubscribe(names)
        }
    }

    var isReady: Bool {
        self.subscriberReady.load(ordering: .relaxed) && self.busLane.client.isConnected
    }

    /// `__probe.<node>`; in a Redis Cluster one per primary, `__probe.<node>.<n>` with the
    /// first `n` whose slot that primary serves, so every shard's subscriber is checked.
    func probeChannels(node: String) -> [String] {
        let base = DeliveryCheck.channelPrefix + node
        guard self.sharded else { return [base] }
        guard let map = self.busLane.client.knownSlotMap else { return [] }
        var channels: [String] = []
        for primary in map.primaries {
            // About as many tries as there are primaries: slots spread evenly.
            for n in 0..<4_096 {
                let channel = "\(base).\(n)"
                if map.primary(forSlot: self.slot(channel)) == primary {
                    channels.append(channel)
                    break
                }
            }
        }
        return channels
    }

    func publishProbe(_ channel: String, sequence: UInt64) async throws {
        _ = try await self.fcall(
            "publish",
            keys: [RESPArgument(self.names.history(channel))],
            slot: self.slot(channel),
            arguments: ["probe", RESPArgument("\(sequence)")],
            on: self.eventLoop
        )
    }

    /// `connected_slaves` of `INFO replication` on every primary the bus loop's client
    /// reaches (the master behind Sentinel, each primary of a cluster).
    func replicaCounts() async throws -> [Int] {
        var counts: [Int] = []
        for connection in self.busLane.client.connections {
            let info = try await connection.send("INFO", arguments: [RESPArgument("replication")]).string ?? ""
            let line = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("connected_slaves:") }
            counts.append(line.flatMap { Int($0.dropFirst("connected_slaves:".count)) } ?? 0)
        }
        return counts
    }

    func shutdown() async {
        switch self.subscriber.withLock({ subscriber in
            defer { subscriber = nil }
            return subscriber
        }) {
        case .none: break
        case .single(let subscriber): await subscriber.close()
        case .sharded(let subscriber): await subscriber.close()
        }
        if let watcher = self.watcher.withLock({ $0 }) {
            await watcher.close()
        }
        for lane in self.lanes.values {
            for client in lane.clients { await client.close() }
        }
    }
}

extension RESPValue {
    /// An error reply saying the function library is not loaded (Redis restarted empty).
    var isMissingFunction: Bool {
        if case .error(let message) = self { return message.contains("Function not found") }
        return false
    }
}
