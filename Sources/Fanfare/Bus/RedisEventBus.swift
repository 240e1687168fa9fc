internal import HiredisNIO
internal import Logging
internal import NIOCore
import Synchronization

/// The bus of a cluster node: publishes through the `fanfare_publish` Redis Function and
/// receives through one ``RedisSubscriber`` on the node's pub/sub connection.
final class RedisEventBus: EventBus {
    private let configuration: RedisConfiguration
    private let names: RedisNames
    private let historyMaxLength: Int
    private let historyMaxAgeMilliseconds: Int
    private let eventLoop: any EventLoop
    private let logger: Logger
    private let connection = Mutex<RedisConnection?>(nil)
    private let subscriber = Mutex<RedisSubscriber?>(nil)
    /// Whether the subscriber is connected: set from its callbacks, read by `/readyz`.
    private let subscriberReady = Atomic<Bool>(false)

    init(
        configuration: RedisConfiguration,
        names: RedisNames,
        historyMaxLength: Int,
        historyMaxAgeSeconds: Int,
        eventLoop: any EventLoop,
        logger: Logger
    ) {
        self.configuration = configuration
        self.names = names
        self.historyMaxLength = historyMaxLength
        self.historyMaxAgeMilliseconds = max(0, historyMaxAgeSeconds) * 1_000
        self.eventLoop = eventLoop
        self.logger = logger
    }

    /// The command connection, reconnecting when the last one dropped.
    func commands() async throws -> RedisConnection {
        if let existing = self.connection.withLock({ $0 }), existing.isActive { return existing }
        let fresh = try await RedisConnection.connect(
            configuration: self.configuration,
            eventLoop: self.eventLoop,
            logger: self.logger
        )
        // Redis may have restarted empty: every new connection makes sure the functions exist.
        do {
            _ = try await fresh.send("FUNCTION", "LOAD", "REPLACE", RESPArgument(RedisFunctions.source))
        } catch {
            await fresh.close()
            throw error
        }
        self.connection.withLock { $0 = fresh }
        return fresh
    }

    /// Calls a function of the `fanfare` library. If Redis lost the library (restarted
    /// empty, FUNCTION FLUSH) the call ran nothing, so the library is loaded again and the
    /// call retried once.
    func fcall(_ arguments: [RESPArgument]) async throws -> RESPValue {
        let connection = try await self.commands()
        do {
            return try await connection.send("FCALL", arguments: arguments)
        } catch let error as RedisClientError
            where error.code == .serverError && error.message.contains("Function not found")
        {
            _ = try await connection.send("FUNCTION", "LOAD", "REPLACE", RESPArgument(RedisFunctions.source))
            return try await connection.send("FCALL", arguments: arguments)
        }
    }

    func start(
        deliver: @escaping @Sendable (String, ByteBuffer) -> Void,
        resubscribed: @escaping @Sendable () -> Void
    ) async throws {
        _ = try await self.commands()
        let names = self.names
        let logger = self.logger
        let subscriber = RedisSubscriber(
            configuration: .init(redis: self.configuration),
            eventLoop: self.eventLoop,
            logger: self.logger
        ) { [weak self] event in
            switch event {
            case .message(let name, let payload):
                if let channel = names.channel(fromPubSub: name) { deliver(channel, payload) }
            case .patternMessage:
                break
            case .ready(let isReconnect):
                self?.subscriberReady.store(true, ordering: .relaxed)
                if isReconnect {
                    logger.info("redis.subscriber.reconnected")
                    resubscribed()
                }
            case .disconnected(let error):
                self?.subscriberReady.store(false, ordering: .relaxed)
                logger.warning("redis.subscriber.disconnected", metadata: ["error": "\(error)"])
            }
        }
        self.subscriber.withLock { $0 = subscriber }
        subscriber.start()
    }

    func subscribe(_ channels: [String]) -> EventLoopFuture<Void> {
        guard let subscriber = self.subscriber.withLock({ $0 }) else {
            return self.eventLoop.makeFailedFuture(FanfareError(.unavailable, "the bus is not started"))
        }
        return subscriber.subscribeFuture(.channel, channels.map(self.names.pubsubChannel))
    }

    func unsubscribe(_ channels: [String]) {
        self.subscriber.withLock { $0 }?.unsubscribe(channels.map(self.names.pubsubChannel))
    }

    var isReady: Bool {
        self.subscriberReady.load(ordering: .relaxed) && (self.connection.withLock { $0?.isActive } ?? false)
    }

    func publish(_ request: PublishRequest) async throws -> PublishResult {
        let reply: RESPValue
        do {
            reply = try await self.fcall(
                [
                    "fanfare_publish", 2, RESPArgument(self.names.history), RESPArgument(self.names.nodes),
                    RESPArgument(request.channel), RESPArgument(request.event), RESPArgument(request.data),
                    RESPArgument(self.historyMaxLength), RESPArgument(self.names.prefix),
                    RESPArgument(self.historyMaxAgeMilliseconds),
                ]
            )
        } catch let error as RedisClientError
            where error.code == .serverError && error.message.hasPrefix("ERR fanfare:")
        {
            throw FanfareError(.invalidInput, String(error.message.dropFirst("ERR fanfare: ".count)))
        } catch {
            throw FanfareError(.unavailable, "Redis is unavailable; the event was not published", underlying: error)
        }
        guard let items = reply.array, items.count == 3, let id = items[0].string, let nodes = items[1].int,
            let connections = items[2].int
        else {
            throw FanfareError(.internalError, "unexpected reply from fanfare_publish: \(reply)")
        }
        return PublishResult(id: id, sent: nodes > 0, connections: Int(connections))
    }

    /// Pages through the history stream with `fanfare_replay`, which reads the oldest and
    /// newest retained ids together with each page, so trimming cannot open a silent gap.
    func replay(after id: EventID, channels: Set<String>) async throws -> Replay {
        var cursor = id
        var entries: [HistoryEntry] = []
        let pageSize = 1_000
        while true {
            let reply: RESPValue
            do {
                reply = try await self.fcall(
                    [
                        "fanfare_replay", 1, RESPArgument(self.names.history), RESPArgument(cursor.description),
                        RESPArgument(pageSize),
                    ]
                )
            } catch {
                throw FanfareError(.unavailable, "Redis is unavailable; history cannot be read", underlying: error)
            }
            guard let parts = reply.array, parts.count == 3, let page = parts[2].array else {
                throw FanfareError(.internalError, "unexpected reply from fanfare_replay")
            }
            let oldest = parts[0].string.flatMap { EventID($0) }
            guard let oldestID = oldest, let newest = parts[1].string.flatMap({ EventID($0) }) else {
                return .gap(oldest: nil)
            }
            if cursor < oldestID || (cursor == id && id > newest) { return .gap(oldest: oldestID) }
            for item in page {
                guard let fields = item.array, fields.count == 2,
                    let entryID = fields[0].string.flatMap({ EventID($0) }),
                    let values = fields[1].array
                else { continue }
                cursor = entryID
                var channel: String?
                var body: ByteBuffer?
                for index in stride(from: 0, to: values.count - 1, by: 2) {
                    switch values[index].string {
                    case "c": channel = values[index + 1].string
                    case "b": body = values[index + 1].bytes
                    default: break
                    }
                }
                guard let channel, channels.contains(channel), var body else { continue }
                var frame = ByteBuffer()
                frame.writeString("id: \(entryID)\n")
                frame.writeBuffer(&body)
                entries.append(HistoryEntry(id: entryID, channel: channel, frame: frame))
            }
            if page.count < pageSize { return .events(entries) }
        }
    }

    func shutdown() async {
        await self.subscriber.withLock { subscriber in
            defer { subscriber = nil }
            return subscriber
        }?.close()
        await self.connection.withLock { connection in
            defer { connection = nil }
            return connection
        }?.close()
    }
}
