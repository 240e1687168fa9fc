public import Logging
public import NIOCore

/// What a ``RedisSubscriber`` reports. Delivered on the subscriber's event loop, in order.
public enum RedisSubscriberEvent: Sendable {
    /// A message published to a subscribed channel.
    case message(channel: String, payload: ByteBuffer)
    /// A message published to a channel matching a subscribed pattern.
    case patternMessage(pattern: String, channel: String, payload: ByteBuffer)
    /// Every subscription is active on a new connection. When `isReconnect` is true the
    /// previous connection was lost: messages published in between were not received,
    /// and a caller that must not miss any should backfill now.
    case ready(isReconnect: Bool)
    /// The connection was lost (or a connect attempt failed); a reconnect is scheduled.
    case disconnected(RedisClientError)
    /// The server ended or refused a subscription nobody asked to end: in a Redis
    /// Cluster, a sharded channel whose slot moved to another primary (`SUNSUBSCRIBE` sent
    /// by the server, or `MOVED`/`ASK` in reply to `SSUBSCRIBE`). The name is no longer
    /// wanted here.
    case droppedByServer(RedisSubscriptionKind, String)
    /// These channels are subscribed again after a time when they were not (a Redis
    /// Cluster's subscriber for their primary reconnected, or they moved to another
    /// primary): messages published to them in between were not received. Only a
    /// ``RedisClusterSubscriber`` reports it; a lone subscriber says
    /// ``ready(isReconnect:)`` for all its names instead.
    case missed([String])
}

/// A pub/sub client on its own connection that keeps its subscriptions alive.
///
/// Subscriptions are a set: subscribing to a name twice is one subscription, and one
/// unsubscribe removes it (reference counting is the caller's). Calls made in the same
/// event-loop tick go out as one command. After the connection drops the subscriber
/// reconnects with exponential back-off, subscribes to everything again, and reports
/// ``RedisSubscriberEvent/ready(isReconnect:)``. A PING every ``Configuration/pingInterval``
/// catches a connection that stopped delivering without closing.
///
/// Safe to call from any thread; all state lives on ``eventLoop``.
public final class RedisSubscriber: Sendable {
    public struct Configuration: Sendable {
        public var redis: RedisConfiguration
        public var reconnectInitialDelay: TimeAmount
        public var reconnectMaximumDelay: TimeAmount
        /// How often to PING; a PING unanswered by the next one closes the connection.
        /// `nil` turns the check off.
        public var pingInterval: TimeAmount?

        public init(
            redis: RedisConfiguration,
            reconnectInitialDelay: TimeAmount = .milliseconds(50),
            reconnectMaximumDelay: TimeAmount = .seconds(2),
            pingInterval: TimeAmount? = .seconds(2)
        ) {
            self.redis = redis
            self.reconnectInitialDelay = reconnectInitialDelay
            self.reconnectMaximumDelay = reconnectMaximumDelay
            self.pingInterval = pingInterval
        }
    }

    public let eventLoop: any EventLoop
    private let core: NIOLoopBoundBox<RedisSubscriberCore>

    /// - Parameters:
    ///   - configuration: the server and the reconnect policy.
    ///   - eventLoop: owns the connection; `onEvent` runs on it.
    ///   - logger: connection-level messages.
    ///   - onEvent: called on `eventLoop` for every message and connection change.
    public init(
        configuration: Configuration,
        eventLoop: any EventLoop,
        logger: Logger,
        onEvent: @escaping @Sendable (RedisSubscriberEvent) -> Void
    ) {
        self.eventLoop = eventLoop
        self.core = .makeBoxSendingValue(
            RedisSubscriberCore(configuration: configuration, eventLoop: eventLoop, logger: logger, onEvent: onEvent),
            eventLoop: eventLoop
        )
    }

    /// A subscriber whose events arrive as an `AsyncStream` instead of a callback.
    /// The stream buffers without bound: consume it promptly.
    public static func makeWithStream(
        configuration: Configuration,
        eventLoop: any EventLoop,
        logger: Logger
    ) -> (RedisSubscriber, AsyncStream<RedisSubscriberEvent>) {
        let (stream, continuation) = AsyncStream.makeStream(of: RedisSubscriberEvent.self)
        let subscriber = RedisSubscriber(configuration: configuration, eventLoop: eventLoop, logger: logger) {
            continuation.yield($0)
        }
        return (subscriber, stream)
    }

    /// Connects (once). Subscriptions made before or after are sent when connected.
    public func start() {
        self.onLoop { $0.start() }
    }

    /// Subscribes to `channels`; returns once Redis has confirmed all of them (or a name
    /// was let go before that, by ``unsubscribe(_:)``: nothing is left to wait for).
    /// Throws if the connection is down or drops before confirming (the names stay
    /// wanted and are subscribed again on reconnect).
    public func subscribe(_ channels: [String]) async throws {
        try await self.subscribeFuture(.channel, channels).get()
    }

    /// Subscribes to glob `patterns` (PSUBSCRIBE); returns once Redis confirmed them.
    public func psubscribe(_ patterns: [String]) async throws {
        try await self.subscribeFuture(.pattern, patterns).get()
    }

    /// Stops listening to `channels`. Returns at once; the command goes out this tick.
    public func unsubscribe(_ channels: [String]) {
        self.onLoop { $0.unsubscribe(.channel, channels) }
    }

    /// Subscribes to sharded channels (SSUBSCRIBE); every one must be in a slot this
    /// server serves. Returns once Redis confirmed them, or refused a slot's channels with
    /// `MOVED` or `ASK` (reported as ``RedisSubscriberEvent/droppedByServer(_:_:)``, for
    /// the owner to subscribe them where the slot is now).
    public func ssubscribe(_ channels: [String]) async throws {
        try await self.subscribeFuture(.shard, channels).get()
    }

    /// Stops listening to sharded `channels` (SUNSUBSCRIBE).
    public func sunsubscribe(_ channels: [String]) {
        self.onLoop { $0.unsubscribe(.shard, channels) }
    }

    /// Stops listening to `patterns` (PUNSUBSCRIBE).
    public func punsubscribe(_ patterns: [String]) {
        self.onLoop { $0.unsubscribe(.pattern, patterns) }
    }

    /// Subscribes; the future completes on ``eventLoop`` once Redis confirmed every name.
    package func subscribeFuture(_ kind: RedisSubscriptionKind, _ names: [String]) -> EventLoopFuture<Void> {
        let promise = self.eventLoop.makePromise(of: Void.self)
        self.onLoop { $0.subscribe(kind, names, promise: promise) }
        return promise.futureResult
    }

    /// Behind Sentinel, the master moved to `master` (``RedisSentinelWatcher`` heard it
    /// announced): unless the connection is already there, drops it and connects again at
    /// once, to `master` first, without back-off, subscribing to everything again; a
    /// connect under way is given up for a new one. Messages published meanwhile are
    /// reported missed by ``RedisSubscriberEvent/ready(isReconnect:)``.
    public func reconnect(to master: RedisAddress) {
        self.onLoop { $0.reconnect(to: master) }
    }

    /// Closes the connection for good; waits until the socket is closed.
    public func close() async {
        let promise = self.eventLoop.makePromise(of: Void.self)
        self.onLoop { $0.close(promise: promise) }
        try? await promise.futureResult.get()
    }

    private func onLoop(_ body: @escaping @Sendable (RedisSubscriberCore) -> Void) {
        let core = self.core
        if self.eventLoop.inEventLoop {
            body(core.value)
        } else {
            self.eventLoop.execute { body(core.value) }
        }
    }
}
