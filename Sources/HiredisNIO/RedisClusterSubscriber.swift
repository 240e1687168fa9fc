public import Logging
public import NIOCore
import Synchronization

/// Sharded pub/sub over a Redis Cluster: one ``RedisSubscriber`` per primary, each
/// subscribed (SSUBSCRIBE) to the channels whose slots that primary serves.
///
/// The slot map is the ``RedisClient``'s. A channel goes to the subscriber of its slot's
/// primary. When a primary's subscriber loses its connection, when the server ends or
/// refuses (`MOVED`, `ASK`) a subscription because its slot moved, and every
/// ``RedisClient/refreshInterval``, the channels whose slot now has another primary move
/// to that primary's subscriber; one refused although the map names the same primary is
/// tried there again at the next periodic check.
///
/// Events reach `onEvent` as from one subscriber: every message; `disconnected` when any
/// primary's subscriber lost its connection; `ready(isReconnect: true)` when a subscriber
/// came back or channels moved to another primary, since messages may have been missed in
/// between (the owner should backfill); `ready(isReconnect: false)` once, when started.
public final class RedisClusterSubscriber: Sendable {
    public let eventLoop: any EventLoop
    private let client: RedisClient
    private let configuration: RedisSubscriber.Configuration
    private let logger: Logger
    private let onEvent: @Sendable (RedisSubscriberEvent) -> Void
    private let state = Mutex(State())
    private let timer = Mutex<RepeatedTask?>(nil)

    private struct State {
        var shards: [RedisAddress: RedisSubscriber] = [:]
        /// The primary each wanted channel is subscribed on.
        var routes: [String: RedisAddress] = [:]
        var down: Set<RedisAddress> = []
        /// Channels whose subscription the server ended or refused although the map still
        /// names the same primary (an `ASK` during a migration, or a map behind the
        /// cluster's): subscribed again by the periodic check, not at once, so that a
        /// disagreement cannot become a busy loop.
        var orphans: Set<String> = []
        /// A reroute for channels the server let go is on its way.
        var rerouteQueued = false
        /// A subscriber reconnected while another was down: messages may have been missed.
        var missedMessages = false
        var closed = false
    }

    /// - Parameters:
    ///   - client: whose slot map routes the channels.
    ///   - configuration: reconnect and PING policy of every primary's subscriber.
    ///   - eventLoop: owns every subscriber connection; `onEvent` runs on it.
    public init(
        client: RedisClient,
        configuration: RedisSubscriber.Configuration,
        eventLoop: any EventLoop,
        logger: Logger,
        onEvent: @escaping @Sendable (RedisSubscriberEvent) -> Void
    ) {
        self.client = client
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.logger = logger
        self.onEvent = onEvent
    }

    /// Reports ready once the slot map is known, and starts checking the routes.
    public func start() {
        let task = self.eventLoop.scheduleRepeatedTask(
            initialDelay: self.client.refreshInterval,
            delay: self.client.refreshInterval
        ) { [weak self] _ in
            self?.reroute(refreshing: false)
        }
        self.timer.withLock { $0 = task }
        Task {
            var delay = self.configuration.reconnectInitialDelay
            while !self.state.withLock({ $0.closed }) {
                do {
                    _ = try await self.client.slotMap()
                    self.report(.ready(isReconnect: false))
                    return
                } catch {
                    self.report(
                        .disconnected(error as? RedisClientError ?? RedisClientError(.connectionClosed, "\(error)"))
                    )
                    try? await Task.sleep(for: .nanoseconds(delay.nanoseconds))
                    delay = .nanoseconds(
                        min(delay.nanoseconds * 2, self.configuration.reconnectMaximumDelay.nanoseconds)
                    )
                }
            }
        }
    }

    /// Whether every primary's subscriber is connected.
    public var isReady: Bool { self.state.withLock { $0.down.isEmpty && !$0.closed } }

    /// Subscribes to `channels`, each on its slot's primary; the future completes on
    /// ``eventLoop`` once every primary confirmed its share.
    public func subscribeFuture(_ channels: [String]) -> EventLoopFuture<Void> {
        guard let map = self.client.knownSlotMap else {
            return self.eventLoop.makeFailedFuture(
                RedisClientError(.connectionClosed, "the cluster's slot map is not known yet")
            )
        }
        var groups: [RedisAddress: [String]] = [:]
        for channel in channels {
            guard let address = map.primary(forSlot: RedisClusterSlot.of(channel)) else {
                return self.eventLoop.makeFailedFuture(
                    RedisClientError(.connectionClosed, "no primary serves the slot of \(channel)")
                )
            }
            groups[address, default: []].append(channel)
        }
        let futures = groups.map { address, names -> EventLoopFuture<Void> in
            let subscriber = self.state.withLock { state -> RedisSubscriber? in
                guard !state.closed else { return nil }
                for name in names {
                    if let previous = state.routes[name], previous != address {
                        state.shards[previous]?.sunsubscribe([name])
                    }
                    state.routes[name] = address
                }
                return self.shard(address, in: &state)
            }
            guard let subscriber else {
                return self.eventLoop.makeFailedFuture(RedisClientError(.clientClosed, "the subscriber is closed"))
            }
            return subscriber.subscribeFuture(.shard, names).hop(to: self.eventLoop)
        }
        return EventLoopFuture.andAllSucceed(futures, on: self.eventLoop)
    }

    /// Subscribes to `channels` and waits for every confirmation.
    public func subscribe(_ channels: [String]) async throws {
        try await self.subscribeFuture(channels).get()
    }

    /// Stops listening to `channels`.
    public func unsubscribe(_ channels: [String]) {
        self.state.withLock { state in
            for channel in channels {
                state.orphans.remove(channel)
                guard let address = state.routes.removeValue(forKey: channel) else { continue }
                state.shards[address]?.sunsubscribe([channel])
            }
        }
    }

    /// The subscriber of the primary at `address`, started on first use.
    private func shard(_ address: RedisAddress, in state: inout State) -> RedisSubscriber {
        if let subscriber = state.shards[address] { return subscriber }
        var configuration = self.configuration
        configuration.redis = configuration.redis.server(address)
        let subscriber = RedisSubscriber(configuration: configuration, eventLoop: self.eventLoop, logger: self.logger) {
            [weak self] event in
            self?.shardEvent(event, from: address)
        }
        state.shards[address] = subscriber
        subscriber.start()
        return subscriber
    }

    private func shardEvent(_ event: RedisSubscriberEvent, from address: RedisAddress) {
        switch event {
        case .message, .patternMessage:
            self.report(event)
        case .ready(let isReconnect):
            // Once every primary's subscriber is up again: ready, and a reconnect if any of
            // them lost its connection meanwhile (a backfill covers them all at once).
            let report = self.state.withLock { state -> RedisSubscriberEvent? in
                guard state.shards[address] != nil else { return nil }  // a subscriber let go
                let wasDown = state.down.remove(address) != nil
                state.missedMessages = state.missedMessages || isReconnect
                guard state.down.isEmpty, wasDown || state.missedMessages else { return nil }
                defer { state.missedMessages = false }
                return .ready(isReconnect: state.missedMessages)
            }
            if let report { self.report(report) }
        case .disconnected:
            let current = self.state.withLock { state -> Bool in
                guard state.shards[address] != nil else { return false }  // a subscriber let go
                state.down.insert(address)
                // Its channels missed what was published meanwhile, wherever they go next.
                state.missedMessages = true
                return true
            }
            guard current else { return }
            self.report(event)
            // The primary may be gone for good, its slots served by a promoted replica.
            self.reroute(refreshing: true)
        case .droppedByServer(_, let channel):
            self.logger.debug("redis.cluster.channel.moved", metadata: ["redis.channel": "\(channel)"])
            // The route stays: once the map names the slot's new primary, the channel moves
            // there like any other (and not at all if the owner unsubscribed meanwhile); if
            // the map still names this one, the periodic check subscribes it here again.
            // One reroute for all the channels a single reply let go.
            let start = self.state.withLock { state -> Bool in
                state.missedMessages = true
                if state.routes[channel] == address { state.orphans.insert(channel) }
                defer { state.rerouteQueued = true }
                return !state.rerouteQueued
            }
            if start { self.reroute(refreshing: true) }
        }
    }

    /// Moves every channel whose slot has another primary now to that primary's
    /// subscriber; with `refreshing`, asks for the slot map first.
    private func reroute(refreshing: Bool) {
        Task {
            if refreshing { _ = try? await self.client.refresh() }
            guard let map = self.client.knownSlotMap else { return }
            let moved = self.state.withLock { state -> [String] in
                if refreshing { state.rerouteQueued = false }
                guard !state.closed else { return [] }
                var moved: [String] = []
                for (channel, address) in state.routes {
                    guard let primary = map.primary(forSlot: RedisClusterSlot.of(channel)) else { continue }
                    if primary != address || (!refreshing && state.orphans.contains(channel)) {
                        moved.append(channel)
                    }
                }
                state.orphans.subtract(moved)
                if !moved.isEmpty { state.missedMessages = true }
                return moved
            }
            if !moved.isEmpty {
                self.logger.info("redis.cluster.channels.moved", metadata: ["redis.channels": "\(moved.count)"])
                do {
                    try await self.subscribe(moved)
                    // Refused again (the map still names a primary that says MOVED or ASK):
                    // those are orphans once more, and only the others need a backfill.
                    let refused = self.state.withLock { Set(moved).intersection($0.orphans).count }
                    if refused < moved.count { self.report(.ready(isReconnect: true)) }
                } catch {
                    self.logger.warning("redis.cluster.resubscribe.failed", metadata: ["error": "\(error)"])
                    // Whatever is still wanted is tried again at the next check.
                    self.state.withLock { state in
                        for channel in moved where state.routes[channel] != nil { state.orphans.insert(channel) }
                    }
                }
            }
            // A subscriber with no channels left on a node that is no longer a primary.
            let (idle, report) = self.state.withLock { state -> ([RedisSubscriber], RedisSubscriberEvent?) in
                let used = Set(state.routes.values)
                var idle: [RedisSubscriber] = []
                var wasDown = false
                for (address, subscriber) in state.shards
                where !used.contains(address) && !map.primaries.contains(address) {
                    idle.append(subscriber)
                    state.shards[address] = nil
                    wasDown = state.down.remove(address) != nil || wasDown
                }
                // The last one down was let go: the others are all up.
                guard wasDown, state.down.isEmpty else { return (idle, nil) }
                defer { state.missedMessages = false }
                return (idle, .ready(isReconnect: state.missedMessages))
            }
            if let report { self.report(report) }
            for subscriber in idle { await subscriber.close() }
        }
    }

    private func report(_ event: RedisSubscriberEvent) {
        let onEvent = self.onEvent
        if self.eventLoop.inEventLoop {
            onEvent(event)
        } else {
            self.eventLoop.execute { onEvent(event) }
        }
    }

    /// Closes every primary's subscriber.
    public func close() async {
        self.timer.withLock { $0?.cancel() }
        let shards = self.state.withLock { state -> [RedisSubscriber] in
            state.closed = true
            defer { state.shards.removeAll() }
            return Array(state.shards.values)
        }
        for shard in shards { await shard.close() }
    }
}
