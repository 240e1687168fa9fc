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
/// primary's subscriber lost its connection; `missed` with the channels whose messages may
/// have been missed (a primary's subscriber came back, or channels moved to another
/// primary), so that the owner backfills those and no others; `ready(isReconnect: true)`
/// once every primary's subscriber is up again; `ready(isReconnect: false)` once, when
/// started. Routes change on ``eventLoop`` only, in the order of the owner's subscribes and
/// unsubscribes, so a move never brings back a channel that was let go.
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
    /// ``eventLoop`` once every primary confirmed its share. Routes change on the loop.
    public func subscribeFuture(_ channels: [String]) -> EventLoopFuture<Void> {
        guard self.eventLoop.inEventLoop else {
            return self.eventLoop.flatSubmit { self.subscribeFuture(channels) }
        }
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
            // Decided under the lock; the subscribers are called after it, on this loop in
            // this turn: what they complete at once may call back into this type.
            let decided = self.state.withLock { state -> (RedisSubscriber, Bool, [(RedisSubscriber, String)])? in
                guard !state.closed else { return nil }
                var leaving: [(RedisSubscriber, String)] = []
                for name in names {
                    if let previous = state.routes[name], previous != address, let shard = state.shards[previous] {
                        leaving.append((shard, name))
                    }
                    state.routes[name] = address
                }
                let (subscriber, isNew) = self.shard(address, in: &state)
                return (subscriber, isNew, leaving)
            }
            guard let (subscriber, isNew, leaving) = decided else {
                return self.eventLoop.makeFailedFuture(RedisClientError(.clientClosed, "the subscriber is closed"))
            }
            for (shard, name) in leaving { shard.sunsubscribe([name]) }
            if isNew { subscriber.start() }
            return subscriber.subscribeFuture(.shard, names).hop(to: self.eventLoop)
        }
        return EventLoopFuture.andAllSucceed(futures, on: self.eventLoop)
    }

    /// Subscribes to `channels` and waits for every confirmation.
    public func subscribe(_ channels: [String]) async throws {
        try await self.subscribeFuture(channels).get()
    }

    /// Stops listening to `channels` (on ``eventLoop``, in order with subscribes and moves).
    public func unsubscribe(_ channels: [String]) {
        guard self.eventLoop.inEventLoop else {
            self.eventLoop.execute { self.unsubscribe(channels) }
            return
        }
        let leaving = self.state.withLock { state -> [(RedisSubscriber, String)] in
            var leaving: [(RedisSubscriber, String)] = []
            for channel in channels {
                state.orphans.remove(channel)
                guard let address = state.routes.removeValue(forKey: channel), let shard = state.shards[address]
                else { continue }
                leaving.append((shard, channel))
            }
            return leaving
        }
        // After the lock: a subscriber lets go of a pending subscribe at once, and what
        // waited for it may call back into this type.
        for (shard, channel) in leaving { shard.sunsubscribe([channel]) }
    }

    /// The subscriber of the primary at `address`, and whether it is new (the caller starts
    /// it, outside the lock).
    private func shard(_ address: RedisAddress, in state: inout State) -> (RedisSubscriber, Bool) {
        if let subscriber = state.shards[address] { return (subscriber, false) }
        var configuration = self.configuration
        configuration.redis = configuration.redis.server(address)
        let subscriber = RedisSubscriber(configuration: configuration, eventLoop: self.eventLoop, logger: self.logger) {
            [weak self] event in
            self?.shardEvent(event, from: address)
        }
        state.shards[address] = subscriber
        return (subscriber, true)
    }

    private func shardEvent(_ event: RedisSubscriberEvent, from address: RedisAddress) {
        switch event {
        case .message, .patternMessage:
            self.report(event)
        case .ready(let isReconnect):
            // Its channels missed what was published while it was away; once every
            // primary's subscriber is up again, the whole subscriber is ready.
            let (missed, ready) = self.state.withLock { state -> ([String], Bool) in
                guard state.shards[address] != nil else { return ([], false) }  // a subscriber let go
                let wasDown = state.down.remove(address) != nil
                // A first connection that came after a failed one confirms what was asked
                // of it meanwhile (those subscribes failed as "closed") like a reconnect.
                let missed =
                    isReconnect || wasDown ? state.routes.filter { $0.value == address }.map(\.key).sorted() : []
                return (missed, wasDown && state.down.isEmpty)
            }
            if !missed.isEmpty { self.report(.missed(missed)) }
            if ready { self.report(.ready(isReconnect: true)) }
        case .disconnected:
            let current = self.state.withLock { state -> Bool in
                guard state.shards[address] != nil else { return false }  // a subscriber let go
                state.down.insert(address)
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
                if state.routes[channel] == address { state.orphans.insert(channel) }
                defer { state.rerouteQueued = true }
                return !state.rerouteQueued
            }
            if start { self.reroute(refreshing: true) }
        case .missed:
            break  // a lone subscriber never says it
        }
    }

    /// Moves every channel whose slot has another primary now to that primary's
    /// subscriber; with `refreshing`, asks for the slot map first. The move itself happens
    /// on ``eventLoop``, in one turn, so it is ordered with the owner's subscribes and
    /// unsubscribes: a channel let go meanwhile is not moved, and one let go later leaves
    /// from where it moved to.
    private func reroute(refreshing: Bool) {
        // From a callback into the client's async refresh: the task is the bridge.
        Task {
            if refreshing { _ = try? await self.client.refresh() }
            self.eventLoop.execute { self.move(refreshing: refreshing) }
        }
    }

    private func move(refreshing: Bool) {
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
            return moved.sorted()
        }
        if !moved.isEmpty {
            self.logger.info("redis.cluster.channels.moved", metadata: ["redis.channels": "\(moved.count)"])
            self.subscribeFuture(moved).assumeIsolated().whenComplete { result in
                switch result {
                case .success:
                    // Those refused again (the map still names a primary that says MOVED or
                    // ASK) are orphans once more; those let go meanwhile need nothing.
                    let missed = self.state.withLock { state in
                        moved.filter { state.routes[$0] != nil && !state.orphans.contains($0) }
                    }
                    if !missed.isEmpty { self.report(.missed(missed)) }
                case .failure(let error):
                    self.logger.warning("redis.cluster.resubscribe.failed", metadata: ["error": "\(error)"])
                    // Whatever is still wanted is tried again at the next check.
                    self.state.withLock { state in
                        for channel in moved where state.routes[channel] != nil { state.orphans.insert(channel) }
                    }
                }
            }
        }
        // A subscriber with no channels left on a node that is no longer a primary.
        let (idle, ready) = self.state.withLock { state -> ([RedisSubscriber], Bool) in
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
            return (idle, wasDown && state.down.isEmpty)
        }
        if ready { self.report(.ready(isReconnect: true)) }
        if !idle.isEmpty {
            // Closing waits for the sockets: off the loop.
            Task { for subscriber in idle { await subscriber.close() } }
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
