internal import Logging
internal import NIOCore

/// The loop-confined half of ``RedisSubscriber``: runs the state machine's actions.
final class RedisSubscriberCore {
    private typealias Key = SubscriberStateMachine.Key

    private enum Operation {
        case subscribe
        case unsubscribe
    }

    private let configuration: RedisSubscriber.Configuration
    private let eventLoop: any EventLoop
    private let logger: Logger
    /// Dropped on close, so a closed subscriber no longer holds what its owner gave it.
    private var onEvent: (@Sendable (RedisSubscriberEvent) -> Void)?
    private var machine: SubscriberStateMachine
    private var channel: (any Channel)?
    private var waiters: [Key: [EventLoopPromise<Void>]] = [:]
    private var queued: [(operation: Operation, kind: RedisSubscriptionKind, names: [String])] = []
    private var flushScheduled = false
    private var backoffTimer: Scheduled<Void>?
    private var pingTimer: Scheduled<Void>?
    private var awaitingPong = false
    private var generation = 0
    /// Behind Sentinel: the master a `+switch-master` named, tried by the next connect.
    private var announcedMaster: RedisAddress?

    init(
        configuration: RedisSubscriber.Configuration,
        eventLoop: any EventLoop,
        logger: Logger,
        onEvent: @escaping @Sendable (RedisSubscriberEvent) -> Void
    ) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.logger = logger
        self.onEvent = onEvent
        self.machine = SubscriberStateMachine(
            initialDelay: configuration.reconnectInitialDelay,
            maximumDelay: configuration.reconnectMaximumDelay
        )
    }

    func start() {
        if self.machine.start() { self.connect() }
    }

    func subscribe(_ kind: RedisSubscriptionKind, _ names: [String], promise: EventLoopPromise<Void>) {
        let action = self.machine.subscribe(kind, names)
        if !action.fail.isEmpty {
            let closed = self.machine.phase == .closed
            promise.fail(
                RedisClientError(
                    closed ? .clientClosed : .connectionClosed,
                    closed ? "the subscriber is closed" : "not connected to Redis; will subscribe on reconnect"
                )
            )
            return
        }
        self.enqueue(.subscribe, kind, action.send)
        let ready = Set(action.ready)
        let waiting = names.filter { !ready.contains($0) }
        guard !waiting.isEmpty else {
            promise.succeed()
            return
        }
        // One promise per name; the caller's promise completes when all of them have.
        let perName = waiting.map { name in
            let perName = self.eventLoop.makePromise(of: Void.self)
            self.waiters[Key(kind: kind, name: name), default: []].append(perName)
            return perName.futureResult
        }
        EventLoopFuture.andAllSucceed(perName, on: self.eventLoop).cascade(to: promise)
    }

    func unsubscribe(_ kind: RedisSubscriptionKind, _ names: [String]) {
        self.enqueue(.unsubscribe, kind, self.machine.unsubscribe(kind, names))
        // A name let go before Redis confirmed it (in a cluster: moved to another primary's
        // subscriber while this one was still connecting) is no longer resubscribed here,
        // so there is nothing left to wait for: its waiters succeed now rather than wait
        // for the connection to drop. (Failing them would fail every other name of the
        // same call; a moved channel's new subscriber reports the reconnect that backfills.)
        for name in names {
            guard let waiting = self.waiters.removeValue(forKey: Key(kind: kind, name: name)) else { continue }
            for promise in waiting { promise.succeed() }
        }
    }

    func close(promise: EventLoopPromise<Void>) {
        self.machine.close()
        self.onEvent = nil
        self.backoffTimer?.cancel()
        self.pingTimer?.cancel()
        self.failWaiters(RedisClientError(.clientClosed, "the subscriber is closed"))
        guard let channel = self.channel else {
            promise.succeed()
            return
        }
        channel.close(promise: nil)
        channel.closeFuture.cascade(to: promise)
    }

    /// The master moved to `master`: reconnect there now, even from the middle of a
    /// back-off, unless the connection already is.
    func reconnect(to master: RedisAddress) {
        if let channel = self.channel, channel.isActive, master.isRemoteEnd(of: channel) { return }
        let action = self.machine.reconnect()
        if action != .none { self.announcedMaster = master }
        switch action {
        case .none:
            break
        case .closeConnection:
            self.logger.debug("redis.subscriber.reconnect", metadata: ["redis.server": "\(self.configuration.redis)"])
            self.channel?.close(promise: nil)
        case .connectNow:
            self.backoffTimer?.cancel()
            self.backoffTimer = nil
            self.connect()
        case .restartConnect:
            self.connect()
        }
    }

    // MARK: Connection

    private func connect() {
        self.generation += 1
        let generation = self.generation
        let configuration = self.configuration.redis
        let announced = self.announcedMaster
        self.announcedMaster = nil  // once: a later connect asks the sentinels, who agree by then
        RedisConnection.connectChannel(
            configuration: configuration,
            eventLoop: self.eventLoop,
            selectDatabase: false,
            announcedMaster: announced
        )
        .flatMap { channel in
            channel.pipeline.removeHandler(name: RedisConnection.commandHandlerName).map { channel }
                .flatMapError { error in
                    channel.close(promise: nil)
                    return channel.eventLoop.makeFailedFuture(error)
                }
        }
        .hop(to: self.eventLoop)
        .assumeIsolated()
        .whenComplete { result in
            guard generation == self.generation else {
                // A connect given up for a newer one (``reconnect(to:)``).
                if case .success(let channel) = result { channel.close(promise: nil) }
                return
            }
            switch result {
            case .success(let channel):
                self.connected(channel)
            case .failure(let error):
                let wrapped =
                    error as? RedisClientError
                    ?? RedisClientError(.connectionClosed, "could not connect", underlying: error)
                self.lost(wrapped)
            }
        }
    }

    private func connected(_ channel: any Channel) {
        guard self.machine.phase == .connecting else {
            channel.close(promise: nil)
            return
        }
        do {
            let handler = RedisPubSubHandler { [unowned self] push in self.received(push) }
            try channel.pipeline.syncOperations.addHandler(handler)
        } catch {
            channel.close(promise: nil)
            self.lost(RedisClientError(.connectionClosed, "could not set up subscribe mode", underlying: error))
            return
        }
        self.channel = channel
        let generation = self.generation
        channel.closeFuture.hop(to: self.eventLoop).assumeIsolated().whenComplete { _ in
            guard generation == self.generation, self.channel === channel else { return }
            self.channel = nil
            self.lost(RedisClientError(.connectionClosed, "the subscriber connection to Redis closed"))
        }
        self.logger.debug("redis.subscriber.connected", metadata: ["redis.server": "\(self.configuration.redis)"])

        let action = self.machine.connected()
        self.queued.removeAll()  // everything wanted is in the resubscription below
        if !action.channels.isEmpty { self.write("SUBSCRIBE", action.channels) }
        if !action.patterns.isEmpty { self.write("PSUBSCRIBE", action.patterns) }
        if !action.shardChannels.isEmpty { self.writePerSlot("SSUBSCRIBE", action.shardChannels) }
        self.awaitingPong = false
        self.schedulePing()
        if action.becameActive {
            self.onEvent?(.ready(isReconnect: action.isReconnect))
        }
    }

    private func lost(_ error: RedisClientError) {
        self.pingTimer?.cancel()
        self.pingTimer = nil
        self.awaitingPong = false
        self.queued.removeAll()
        self.failWaiters(error)
        guard let delay = self.machine.connectionLost() else { return }
        self.logger.debug(
            "redis.subscriber.disconnected",
            metadata: ["error": "\(error)", "redis.reconnect.delay": "\(delay)"]
        )
        self.onEvent?(.disconnected(error))
        // Jitter spreads the reconnects of many nodes after a Redis restart.
        let jittered = TimeAmount.nanoseconds(
            delay.nanoseconds / 2 + Int64.random(in: 0...max(1, delay.nanoseconds / 2))
        )
        self.backoffTimer = self.eventLoop.assumeIsolated().scheduleTask(in: jittered) {
            self.backoffTimer = nil
            if self.machine.backoffElapsed() { self.connect() }
        }
    }

    private func failWaiters(_ error: RedisClientError) {
        let waiters = self.waiters
        self.waiters.removeAll()
        for promise in waiters.values.joined() { promise.fail(error) }
    }

    /// Sends a PING every interval; one still unanswered at the next tick closes the
    /// connection, which then reconnects like any other drop.
    private func schedulePing() {
        guard let interval = self.configuration.pingInterval else { return }
        self.pingTimer = self.eventLoop.assumeIsolated().scheduleTask(in: interval) {
            self.pingTimer = nil
            guard let channel = self.channel else { return }
            if self.awaitingPong {
                self.logger.debug("redis.subscriber.ping.timeout")
                channel.close(promise: nil)
                return
            }
            self.awaitingPong = true
            self.write("PING", [])
            self.schedulePing()
        }
    }

    // MARK: Commands

    private func enqueue(_ operation: Operation, _ kind: RedisSubscriptionKind, _ names: [String]) {
        guard !names.isEmpty, self.channel != nil else { return }
        if let last = self.queued.last, last.operation == operation, last.kind == kind {
            self.queued[self.queued.count - 1].names += names
        } else {
            self.queued.append((operation, kind, names))
        }
        guard !self.flushScheduled else { return }
        self.flushScheduled = true
        self.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            let queued = self.queued
            self.queued.removeAll()
            for (operation, kind, names) in queued {
                switch (operation, kind) {
                case (.subscribe, .channel): self.write("SUBSCRIBE", names)
                case (.subscribe, .pattern): self.write("PSUBSCRIBE", names)
                case (.unsubscribe, .channel): self.write("UNSUBSCRIBE", names)
                case (.unsubscribe, .pattern): self.write("PUNSUBSCRIBE", names)
                case (.subscribe, .shard): self.writePerSlot("SSUBSCRIBE", names)
                case (.unsubscribe, .shard): self.writePerSlot("SUNSUBSCRIBE", names)
                }
            }
        }
    }

    /// One command per hash slot: a cluster refuses SSUBSCRIBE and SUNSUBSCRIBE of
    /// channels in different slots (CROSSSLOT).
    private func writePerSlot(_ command: String, _ names: [String]) {
        var slots: [Int: [String]] = [:]
        var order: [Int] = []
        for name in names {
            let slot = RedisClusterSlot.of(name)
            if slots[slot] == nil { order.append(slot) }
            slots[slot, default: []].append(name)
        }
        for slot in order { self.write(command, slots[slot] ?? []) }
    }

    private func write(_ command: String, _ names: [String]) {
        guard let channel = self.channel else { return }
        var buffer = channel.allocator.buffer(capacity: 32 + names.count * 24)
        RESPCommandEncoder.encode(command, arguments: names.map { RESPArgument($0) }, into: &buffer)
        channel.writeAndFlush(buffer, promise: nil)
    }

    private func received(_ push: RedisPubSubPush) {
        switch push {
        case .message(let channel, let payload):
            self.onEvent?(.message(channel: channel, payload: payload))
        case .patternMessage(let pattern, let channel, let payload):
            self.onEvent?(.patternMessage(pattern: pattern, channel: channel, payload: payload))
        case .subscribed(let kind, let name), .unsubscribed(let kind, let name):
            let unsubscribed = if case .unsubscribed = push { true } else { false }
            let action = self.machine.acknowledged(kind, name, unsubscribed: unsubscribed)
            if action.droppedByServer {
                self.onEvent?(.droppedByServer(kind, name))
            }
            if action.nameReady, let waiting = self.waiters.removeValue(forKey: Key(kind: kind, name: name)) {
                for promise in waiting { promise.succeed() }
            }
            if action.becameActive {
                self.onEvent?(.ready(isReconnect: action.isReconnect))
            }
        case .pong:
            self.awaitingPong = false
        case .redirected(let redirection):
            // The slot is another primary's (or on its way there): its channels are let go
            // here, like a subscription the server ended, and the owner routes them again.
            let action = self.machine.redirected(slot: redirection.slot)
            self.logger.debug(
                "redis.subscriber.redirected",
                metadata: ["redis.slot": "\(redirection.slot)", "redis.channels": "\(action.dropped.count)"]
            )
            // Reported before the waiters end: an owner that retries on their success
            // finds the refusal recorded.
            for name in action.dropped { self.onEvent?(.droppedByServer(.shard, name)) }
            for name in action.dropped {
                if let waiting = self.waiters.removeValue(forKey: Key(kind: .shard, name: name)) {
                    for promise in waiting { promise.succeed() }
                }
            }
            if action.becameActive {
                self.onEvent?(.ready(isReconnect: action.isReconnect))
            }
        }
    }
}

@available(*, unavailable)
extension RedisSubscriberCore: Sendable {}
