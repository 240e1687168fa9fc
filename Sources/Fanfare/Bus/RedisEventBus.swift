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
    private let names: RedisNames
    private let policy: HistoryPolicy
    private let eventLoop: any EventLoop
    private let logger: Logger
    /// Replicas a publish must reach before it is acknowledged, and for how long to wait.
    private let replicaAcks: (count: Int, timeout: TimeAmount)
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
    private final class Lane: Sendable {
        let client: RedisClient

        init(client: RedisClient) {
            self.client = client
        }
    }

    /// The lanes by loop; the bus loop's serves callers that are on none of them.
    private let lanes: [ObjectIdentifier: Lane]
    private var sharded: Bool { self.configuration.clusterSeeds != nil }

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
        let library = Library(
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
            let client = RedisClient(configuration: configuration, eventLoop: loop, logger: logger) { connection in
                try await library.ensure(on: connection)
            }
            lanes[ObjectIdentifier(loop)] = Lane(client: client)
        }
        self.lanes = lanes
    }

    private let library: Library

    /// The lane of the calling thread's loop, or the bus loop's.
    private var currentLane: Lane {
        if let loop = MultiThreadedEventLoopGroup.currentEventLoop, let lane = self.lanes[ObjectIdentifier(loop)] {
            return lane
        }
        return self.busLane
    }

    private var busLane: Lane {
        // Every lane table holds the bus loop's lane (see init).
        self.lanes[ObjectIdentifier(self.eventLoop)].unsafelyUnwrapped
    }

    /// The commands of the caller's loop.
    private var client: RedisClient { self.currentLane.client }

    /// The slot of a channel's keys (its history, pub/sub channel and idempotency keys).
    private func slot(_ channel: String) -> Int { RedisClusterSlot.of(self.names.history(channel)) }

    /// The slot of the registry's keys.
    var registrySlot: Int { RedisClusterSlot.of(self.names.nodes) }

    /// Loads the library wherever a connection finds it missing or older.
    private func ensureLibraryEverywhere(_ client: RedisClient) async throws {
        for connection in client.connections { try await self.library.ensure(on: connection) }
    }
}

/// The function library, and how a node makes sure a server has it.
private struct Library: Sendable {
    let source: String
    let names: RedisNames
    let policy: HistoryPolicy
    let logger: Logger

    /// Loads the library when Redis has none (or an older one). A library of the same
    /// version with another history policy is the cluster's: it stays, and the node says
    /// so, since replacing it would change every other node's history.
    func ensure(on connection: RedisConnection) async throws {
        let source = self.source
        let reply: RESPValue
        do {
            reply = try await connection.send("FCALL", RESPArgument(self.names.function("policy")), 0)
        } catch let error as RedisClientError
            where error.code == .serverError && error.message.lowercased().contains("unknown command")
        {
            // Functions came with Redis 7.0: say so, instead of failing on FUNCTION LOAD.
            let version = try? await Self.serverVersion(connection)
            throw FanfareError(
                .invalidConfiguration,
                "Redis \(version ?? "(version unknown)") has no functions (FCALL): Fanfare needs Redis 7.0 or newer",
                underlying: error
            )
        } catch let error as RedisClientError where error.code == .serverError {
            // No library (Redis started empty): load ours. Another node may just have.
            do {
                _ = try await connection.send("FUNCTION", "LOAD", RESPArgument(source))
            } catch let error as RedisClientError
                where error.code == .serverError && error.message.contains("already exists")
            {}
            return
        }
        let parts = reply.array ?? []
        let version = parts.first?.int ?? 0
        let loaded = parts.count > 1 ? parts[1].string ?? "" : ""
        if version < Int64(RedisFunctions.version) {
            _ = try await connection.send("FUNCTION", "LOAD", "REPLACE", RESPArgument(source))
            self.logger.notice(
                "fanfare.library.upgraded",
                metadata: ["from": "\(version)", "to": "\(RedisFunctions.version)"]
            )
        } else if loaded != self.policy.description {
            self.logger.warning(
                "fanfare.history.policy.differs",
                metadata: [
                    "configured": "\(self.policy)", "cluster": "\(loaded)",
                    "effect": "publishes keep the cluster's policy; set the same history settings on every node",
                ]
            )
        }
    }

    /// The server's `redis_version`, from `INFO server`.
    private static func serverVersion(_ connection: RedisConnection) async throws -> String? {
        let info = try await connection.send("INFO", "server").string ?? ""
        return info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("redis_version:") }
            .map { String($0.dropFirst("redis_version:".count)) }
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
        arguments: [RESPArgument] = []
    ) async throws -> RESPValue {
        let client = self.client
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
        subscriptions: @escaping @Sendable (SubscriptionChange) -> Void
    ) async throws {
        // Every primary is reached (and given the library) before the node serves.
        let client = self.busLane.client
        client.start()
        for primary in try await client.slotMap().primaries {
            _ = try await client.connection(to: primary)
        }
        for lane in self.lanes.values where lane !== self.busLane { lane.client.start() }
        let names = self.names
        let logger = self.logger
        let onEvent: @Sendable (RedisSubscriberEvent) -> Void = { [weak self] event in
            switch event {
            case .message(let name, let payload):
                guard let channel = names.channel(fromPubSub: name) else { return }
                guard let event = Self.event(channel: channel, payload: payload) else {
                    logger.warning("redis.message.malformed", metadata: ["channel": "\(channel)"])
                    return
                }
                deliver(event)
            case .patternMessage, .droppedByServer:
                // A cluster's subscriber follows a moved slot itself and then says ready.
                break
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
        for lane in self.lanes.values { lane.client.reconnect(to: change.new) }
        if case .single(let subscriber) = self.subscriber.withLock({ $0 }) { subscriber.reconnect(to: change.new) }
    }

    /// A pub/sub message `<position> <predecessor>\n<body>` as an event.
    static func event(channel: String, payload: ByteBuffer) -> BusEvent? {
        var payload = payload
        let view = payload.readableBytesView
        guard let space = view.firstIndex(of: UInt8(ascii: " ")),
            let newline = view[space...].firstIndex(of: UInt8(ascii: "\n")),
            let position = StreamPosition(String(decoding: view[view.startIndex..<space], as: UTF8.self)),
            let predecessor = StreamPosition(String(decoding: view[(space + 1)..<newline], as: UTF8.self))
        else { return nil }
        payload.moveReaderIndex(forwardBy: newline - view.startIndex + 1)
        return BusEvent(channel: channel, position: position, predecessor: predecessor, body: payload)
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
            arguments: ["probe", RESPArgument("\(sequence)")]
        )
    }

    func publish(_ request: PublishRequest) async throws -> PublishResult {
        let client = self.client
        let call = self.publishCall(request)
        let slot = self.slot(request.channel)
        var sent: (reply: RESPValue, acknowledged: RESPValue?)
        do {
            sent = try await self.send(call, slot: slot, on: client)
            if sent.reply.isMissingFunction {
                // The library was lost, so nothing ran: load it and publish once more.
                try await self.ensureLibraryEverywhere(client)
                sent = try await self.send(call, slot: slot, on: client)
            }
        } catch let error as FanfareError {
            throw error
        } catch let error as RedisClientError where error.code == .notSent || error.code == .clientClosed {
            throw Self.notPublished(error)
        } catch {
            throw Self.outcomeUnknown(request, error)
        }
        let result = try self.publishResult(sent.reply)
        if let acknowledged = sent.acknowledged {
            try self.checkReplicas(acknowledged, idempotencyKey: request.idempotencyKey)
        }
        return result
    }

    /// The publish call, with WAIT right behind it on the same connection when replicas
    /// must confirm (it counts the replicas that have all this connection wrote so far).
    private func send(
        _ call: [RESPArgument],
        slot: Int,
        on client: RedisClient
    ) async throws -> (reply: RESPValue, acknowledged: RESPValue?) {
        guard self.replicaAcks.count > 0 else {
            return (try await client.reply(to: "FCALL", arguments: call, slot: slot), nil)
        }
        let reply = await client.replies(
            to: [RedisClient.Command("FCALL", call, slot: slot)],
            trailer: self.waitCommand
        )
        return (try reply[0].result.get(), try reply[0].trailer?.get())
    }

    /// `WAIT <replicas> <milliseconds>`.
    private var waitCommand: (command: String, arguments: [RESPArgument]) {
        (
            "WAIT",
            [RESPArgument(self.replicaAcks.count), RESPArgument(Int(self.replicaAcks.timeout.nanoseconds / 1_000_000))]
        )
    }

    /// A publish the master has but not enough replicas do: it happened, yet a failover
    /// could lose it, so it is not acknowledged.
    private func checkReplicas(_ reply: RESPValue, idempotencyKey: String?) throws {
        let replicas = reply.int ?? 0
        guard replicas < self.replicaAcks.count else { return }
        let milliseconds = self.replicaAcks.timeout.nanoseconds / 1_000_000
        throw FanfareError(
            .outcomeUnknown,
            "the event was published, but only \(replicas) of \(self.replicaAcks.count) replicas confirmed it "
                + "within \(milliseconds) ms, so a failover could lose it: "
                + (idempotencyKey == nil
                    ? "publish with an idempotencyKey to retry safely"
                    : "retry with the same idempotencyKey")
        )
    }

    /// Every call goes out at once on the caller's connection (one write for the batch)
    /// and the replies are read in order. Consecutive events of one channel without an
    /// idempotency key go in one call of `<prefix>_publish_batch` (one slot, one read of
    /// the channel's head for all of them); the others in one `<prefix>_publish` each.
    func publish(batch requests: [PublishRequest]) async -> [Result<PublishResult, FanfareError>] {
        let client = self.client
        var spans: [Range<Int>] = []
        var calls: [RedisClient.Command] = []
        var start = 0
        while start < requests.count {
            var end = start + 1
            if requests[start].idempotencyKey == nil {
                while end < requests.count, requests[end].idempotencyKey == nil,
                    requests[end].channel == requests[start].channel
                {
                    end += 1
                }
            }
            spans.append(start..<end)
            calls.append(
                RedisClient.Command(
                    "FCALL",
                    end - start == 1 ? self.publishCall(requests[start]) : self.batchCall(requests[start..<end]),
                    slot: self.slot(requests[start].channel)
                )
            )
            start = end
        }
        var results = [Result<PublishResult, FanfareError>](
            repeating: .failure(FanfareError(.internalError, "no reply")),
            count: requests.count
        )
        var retry: [Int] = []
        // With replica acknowledgement, WAIT follows the calls on every primary they went to.
        let replies = await client.replies(to: calls, trailer: self.replicaAcks.count > 0 ? self.waitCommand : nil)
        for (span, reply) in zip(spans, replies) {
            switch reply.result {
            case .success(let reply) where reply.isMissingFunction:
                retry += span
            case .success(let reply) where span.count == 1:
                results[span.lowerBound] = Result { try self.publishResult(reply) }
                    .mapError(Self.fanfareError)
            case .success(let reply):
                do {
                    let published = try self.batchResult(reply, count: span.count)
                    for (index, result) in zip(span, published) { results[index] = .success(result) }
                } catch {
                    for index in span { results[index] = .failure(Self.fanfareError(error)) }
                }
            case .failure(let error as RedisClientError) where error.code == .notSent:
                for index in span { results[index] = .failure(Self.notPublished(error)) }
            case .failure(let error):
                for index in span { results[index] = .failure(Self.outcomeUnknown(requests[index], error)) }
            }
            if let acknowledged = reply.trailer {
                for index in span {
                    guard case .success = results[index] else { continue }
                    do {
                        try self.checkReplicas(try acknowledged.get(), idempotencyKey: requests[index].idempotencyKey)
                    } catch {
                        results[index] = .failure(
                            error as? FanfareError ?? Self.outcomeUnknown(requests[index], error)
                        )
                    }
                }
            }
        }
        if !retry.isEmpty {
            // The library was lost before these ran: load it and publish them once more.
            do {
                try await self.ensureLibraryEverywhere(client)
                for index in retry {
                    do {
                        results[index] = .success(try await self.publish(requests[index]))
                    } catch {
                        results[index] = .failure(Self.fanfareError(error))
                    }
                }
            } catch {
                let refused = Self.notPublished(error)
                for index in retry { results[index] = .failure(refused) }
            }
        }
        return results
    }

    /// `<prefix>_publish_batch` of events of one channel, none with an idempotency key.
    private func batchCall(_ requests: ArraySlice<PublishRequest>) -> [RESPArgument] {
        var call = [RESPArgument]()
        call.reserveCapacity(3 + 2 * requests.count)
        call += [
            RESPArgument(self.names.function("publish_batch")), RESPArgument(1),
            RESPArgument(self.names.history(requests[requests.startIndex].channel)),
        ]
        for request in requests { call += [RESPArgument(request.event), RESPArgument(request.data)] }
        return call
    }

    /// `<prefix>_publish_batch`'s reply, `{nodes, position, position, ...}`: a result per event.
    private func batchResult(_ reply: RESPValue, count: Int) throws -> [PublishResult] {
        if case .error(let message) = reply { throw Self.refusal(message) }
        guard let items = reply.array, items.count == count + 1, let nodes = items[0].int else {
            throw FanfareError(
                .internalError,
                "unexpected reply from \(self.names.function("publish_batch")): \(reply)"
            )
        }
        return try items.dropFirst().map { item in
            guard let text = item.string, let position = StreamPosition(text) else {
                throw FanfareError(
                    .internalError,
                    "unexpected position from \(self.names.function("publish_batch")): \(item)"
                )
            }
            return PublishResult(position: position, sent: nodes > 0, duplicate: false)
        }
    }

    /// No connection to send the publish on: it did not happen.
    private static func notPublished(_ error: any Error) -> FanfareError {
        FanfareError(.unavailable, "Redis is unavailable; the event was not published", underlying: error)
    }

    /// Why a publish function refused to run (it published nothing).
    private static func refusal(_ message: String) -> FanfareError {
        if message.hasPrefix("ERR fanfare: ") {
            return FanfareError(.invalidInput, String(message.dropFirst("ERR fanfare: ".count)))
        }
        return FanfareError(
            .unavailable,
            "Redis refused the publish; the event was not published",
            underlying: RedisClientError(.serverError, message)
        )
    }

    private static func fanfareError(_ error: any Error) -> FanfareError {
        error as? FanfareError ?? FanfareError(.internalError, "the publish failed", underlying: error)
    }

    private func publishCall(_ request: PublishRequest) -> [RESPArgument] {
        var call = [RESPArgument(self.names.function("publish"))]
        call.reserveCapacity(6)
        if let key = request.idempotencyKey {
            call += [
                RESPArgument(2), RESPArgument(self.names.history(request.channel)),
                RESPArgument(self.names.idempotency(request.channel, key: key)),
            ]
        } else {
            call += [RESPArgument(1), RESPArgument(self.names.history(request.channel))]
        }
        call += [RESPArgument(request.event), RESPArgument(request.data)]
        return call
    }

    /// The command went out and no answer came back: Redis may have run it.
    private static func outcomeUnknown(_ request: PublishRequest, _ error: any Error) -> FanfareError {
        FanfareError(
            .outcomeUnknown,
            request.idempotencyKey == nil
                ? "Redis did not confirm the publish; the event may have been published (publish with an idempotencyKey to retry safely)"
                : "Redis did not confirm the publish; the event may have been published: retry with the same idempotencyKey",
            underlying: error
        )
    }

    /// The publish function's reply: its result, or why it ran nothing.
    private func publishResult(_ reply: RESPValue) throws -> PublishResult {
        if case .error(let message) = reply { throw Self.refusal(message) }
        guard let items = reply.array, items.count == 3, let id = items[0].string,
            let position = StreamPosition(id), let nodes = items[1].int, let duplicate = items[2].int
        else {
            throw FanfareError(.internalError, "unexpected reply from \(self.names.function("publish")): \(reply)")
        }
        return PublishResult(position: position, sent: nodes > 0, duplicate: duplicate == 1)
    }

    /// One key per call (each channel's slot on its own, ready for Redis Cluster), all
    /// of them pipelined in one round trip.
    func heads(of channels: [String]) async throws -> [StreamPosition] {
        guard !channels.isEmpty else { return [] }
        let function = RESPArgument(self.names.function("head"))
        let client = self.client
        let commands = channels.map { channel in
            RedisClient.Command(
                "FCALL",
                [function, RESPArgument(1), RESPArgument(self.names.history(channel))],
                slot: self.slot(channel)
            )
        }
        var replies: [RESPValue]
        do {
            replies = try await client.replies(to: commands).map { try $0.result.get() }
            if replies.contains(where: { $0.isMissingFunction }) {
                try await self.ensureLibraryEverywhere(client)
                replies = try await client.replies(to: commands).map { try $0.result.get() }
            }
        } catch {
            throw FanfareError(.unavailable, "Redis is unavailable; history cannot be read", underlying: error)
        }
        return try replies.map { reply in
            if case .error(let message) = reply {
                // Loading, out of memory, a replica that cannot answer: try again later.
                throw FanfareError(.unavailable, "Redis refused to read a channel's head: \(message)")
            }
            guard let text = reply.string, let position = StreamPosition(text) else {
                throw FanfareError(.internalError, "unexpected reply from \(self.names.function("head")): \(reply)")
            }
            return position
        }
    }

    func read(
        _ channel: String,
        after position: StreamPosition,
        limit: Int,
        maxBytes: Int
    ) async throws -> HistoryPage {
        let reply: RESPValue
        do {
            reply = try await self.fcall(
                "read",
                keys: [RESPArgument(self.names.history(channel))],
                slot: self.slot(channel),
                arguments: [RESPArgument(position.description), RESPArgument(limit), RESPArgument(maxBytes)]
            )
        } catch {
            throw FanfareError(.unavailable, "Redis is unavailable; history cannot be read", underlying: error)
        }
        guard let parts = reply.array, parts.count == 3, let status = parts[0].string,
            let head = parts[1].string.flatMap({ StreamPosition($0) }), let entries = parts[2].array
        else {
            throw FanfareError(.internalError, "unexpected reply from \(self.names.function("read"))")
        }
        let pageStatus: HistoryPage.Status
        switch status {
        case "ok": pageStatus = .ok
        case "trimmed": pageStatus = .trimmed
        case "gone": pageStatus = .gone
        default: return HistoryPage(status: .unknown, head: head, events: [])
        }
        var events: [BusEvent] = []
        events.reserveCapacity(entries.count)
        for entry in entries {
            guard let fields = entry.array, fields.count == 2, let id = fields[0].string,
                let position = StreamPosition(id), let values = fields[1].array
            else {
                throw FanfareError(.internalError, "unexpected history entry in \(channel)")
            }
            var predecessor: StreamPosition?
            var body: ByteBuffer?
            for index in stride(from: 0, to: values.count - 1, by: 2) {
                switch values[index].string {
                case "p": predecessor = values[index + 1].string.flatMap { StreamPosition($0) }
                case "b": body = values[index + 1].bytes
                default: break
                }
            }
            guard let predecessor, let body else {
                throw FanfareError(.internalError, "a history entry of \(channel) lacks its fields")
            }
            events.append(BusEvent(channel: channel, position: position, predecessor: predecessor, body: body))
        }
        return HistoryPage(status: pageStatus, head: head, events: events)
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
        for lane in self.lanes.values { await lane.client.close() }
    }
}

extension RESPValue {
    /// An error reply saying the function library is not loaded (Redis restarted empty).
    fileprivate var isMissingFunction: Bool {
        if case .error(let message) = self { return message.contains("Function not found") }
        return false
    }
}
