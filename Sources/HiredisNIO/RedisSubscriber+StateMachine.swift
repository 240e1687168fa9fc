internal import NIOCore

/// Whether a subscription names one channel (SUBSCRIBE) or a glob pattern (PSUBSCRIBE).
public enum RedisSubscriptionKind: Sendable, Hashable {
    case channel
    case pattern
    /// A sharded channel of a Redis Cluster (SSUBSCRIBE): served by the primary of its slot.
    case shard
}

/// The subscriber's logic without I/O: which names are wanted, which the server has
/// confirmed, and what to do when the connection comes and goes.
///
/// Every name in flight (SUBSCRIBE or UNSUBSCRIBE sent, no acknowledgement yet) is
/// counted; a name is *ready* when it is wanted, nothing for it is in flight, and the
/// connection is up. After a (re)connect every wanted name is sent again; the machine
/// becomes active once all of them are acknowledged.
struct SubscriberStateMachine {
    struct Key: Hashable {
        var kind: RedisSubscriptionKind
        var name: String
    }

    enum Phase: Equatable {
        case idle
        case connecting
        case resubscribing
        case active
        case backingOff
        case closed
    }

    struct SubscribeAction: Equatable {
        /// Names to send in one command now.
        var send: [String] = []
        /// Names already ready; their waiters can be resumed at once.
        var ready: [String] = []
        /// Names whose waiters must fail now (no connection to wait on).
        var fail: [String] = []
    }

    struct ConnectedAction: Equatable {
        var channels: [String]
        var patterns: [String]
        var shardChannels: [String] = []
        /// Set when nothing needs confirming: the subscriber is ready at once.
        var becameActive: Bool
        var isReconnect: Bool
    }

    struct AckAction: Equatable {
        var nameReady: Bool
        /// Set when the server ended a wanted subscription that nobody asked to end (a
        /// cluster slot moved away): the name is no longer wanted here.
        var droppedByServer = false
        /// Set when this acknowledgement finished a resubscription.
        var becameActive: Bool
        var isReconnect: Bool
    }

    /// What to do when the server moved (a Sentinel failover named a new master).
    enum ReconnectAction: Equatable {
        /// Nothing: not started, or closed.
        case none
        /// Close the connection; the loss that follows reconnects without delay.
        case closeConnection
        /// Stop waiting out the back-off and connect now.
        case connectNow
        /// A connect is under way, perhaps to the old server: give it up and connect again.
        case restartConnect
    }

    private(set) var phase = Phase.idle
    private(set) var channels = Set<String>()
    private(set) var patterns = Set<String>()
    private(set) var shardChannels = Set<String>()
    private var inFlight: [Key: Int] = [:]
    private var inFlightTotal = 0
    private var hasBeenActive = false
    private var failedAttempts = 0
    /// Set by ``reconnect()`` on a live connection: its loss is asked for, so no back-off.
    private var reconnectAtOnce = false
    let initialDelay: TimeAmount
    let maximumDelay: TimeAmount

    init(initialDelay: TimeAmount, maximumDelay: TimeAmount) {
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
    }

    private var isConnected: Bool { self.phase == .resubscribing || self.phase == .active }

    /// Starting connects once; later calls do nothing.
    mutating func start() -> Bool {
        guard self.phase == .idle else { return false }
        self.phase = .connecting
        return true
    }

    func isReady(_ key: Key) -> Bool {
        self.isConnected && self.wanted(key.kind).contains(key.name) && (self.inFlight[key] ?? 0) == 0
    }

    private func wanted(_ kind: RedisSubscriptionKind) -> Set<String> {
        switch kind {
        case .channel: self.channels
        case .pattern: self.patterns
        case .shard: self.shardChannels
        }
    }

    private mutating func setWanted(_ kind: RedisSubscriptionKind, _ update: (inout Set<String>) -> Void) {
        switch kind {
        case .channel: update(&self.channels)
        case .pattern: update(&self.patterns)
        case .shard: update(&self.shardChannels)
        }
    }

    mutating func subscribe(_ kind: RedisSubscriptionKind, _ names: [String]) -> SubscribeAction {
        var action = SubscribeAction()
        var new: [String] = []
        self.setWanted(kind) { wanted in
            for name in names where wanted.insert(name).inserted { new.append(name) }
        }
        switch self.phase {
        case .closed, .backingOff:
            action.fail = names
        case .idle, .connecting:
            break  // sent with everything else once connected
        case .resubscribing, .active:
            action.send = new
            self.markInFlight(kind, new)
            action.ready = names.filter { self.isReady(Key(kind: kind, name: $0)) }
        }
        return action
    }

    /// Returns the names to send in one UNSUBSCRIBE now.
    mutating func unsubscribe(_ kind: RedisSubscriptionKind, _ names: [String]) -> [String] {
        var removed: [String] = []
        self.setWanted(kind) { wanted in
            for name in names where wanted.remove(name) != nil { removed.append(name) }
        }
        guard self.isConnected else { return [] }
        self.markInFlight(kind, removed)
        return removed
    }

    private mutating func markInFlight(_ kind: RedisSubscriptionKind, _ names: [String]) {
        for name in names {
            self.inFlight[Key(kind: kind, name: name), default: 0] += 1
        }
        self.inFlightTotal += names.count
    }

    mutating func connected() -> ConnectedAction {
        precondition(self.phase == .connecting, "connected while \(self.phase)")
        self.failedAttempts = 0
        self.phase = .resubscribing
        let channels = self.channels.sorted()
        let patterns = self.patterns.sorted()
        let shardChannels = self.shardChannels.sorted()
        self.markInFlight(.channel, channels)
        self.markInFlight(.pattern, patterns)
        self.markInFlight(.shard, shardChannels)
        let isReconnect = self.hasBeenActive
        let becameActive = self.inFlightTotal == 0
        if becameActive { self.becomeActive() }
        return ConnectedAction(
            channels: channels,
            patterns: patterns,
            shardChannels: shardChannels,
            becameActive: becameActive,
            isReconnect: isReconnect
        )
    }

    private mutating func becomeActive() {
        self.phase = .active
        self.hasBeenActive = true
    }

    /// The server acknowledged a (P|S)SUBSCRIBE or (P|S)UNSUBSCRIBE for `name`; an
    /// `unsubscribed` push with nothing in flight for a wanted name is the server's own.
    mutating func acknowledged(_ kind: RedisSubscriptionKind, _ name: String, unsubscribed: Bool = false) -> AckAction {
        let key = Key(kind: kind, name: name)
        var action = AckAction(nameReady: false, becameActive: false, isReconnect: self.hasBeenActive)
        guard self.isConnected else { return action }
        guard let count = self.inFlight[key] else {
            if unsubscribed, self.wanted(kind).contains(name) {
                self.setWanted(kind) { _ = $0.remove(name) }
                action.droppedByServer = true
            }
            return action
        }
        if count <= 1 { self.inFlight[key] = nil } else { self.inFlight[key] = count - 1 }
        self.inFlightTotal -= 1
        action.nameReady = self.isReady(key)
        if self.phase == .resubscribing && self.inFlightTotal == 0 {
            self.becomeActive()
            action.becameActive = true
        }
        return action
    }

    struct RedirectAction: Equatable {
        /// The shard channels of the slot, no longer wanted here.
        var dropped: [String]
        /// Set when this finished a resubscription.
        var becameActive: Bool
        var isReconnect: Bool
    }

    /// The server refused a sharded subscription because `slot` is served elsewhere (a
    /// cluster's `MOVED` or `ASK`, one reply for a whole command): every shard channel of
    /// the slot is no longer wanted here, and no acknowledgement will come for any of them.
    mutating func redirected(slot: Int) -> RedirectAction {
        var action = RedirectAction(dropped: [], becameActive: false, isReconnect: self.hasBeenActive)
        guard self.isConnected else { return action }
        action.dropped = self.shardChannels.filter { RedisClusterSlot.of($0) == slot }.sorted()
        self.shardChannels.subtract(action.dropped)
        for (key, count) in self.inFlight where key.kind == .shard && RedisClusterSlot.of(key.name) == slot {
            self.inFlight[key] = nil
            self.inFlightTotal -= count
        }
        if self.phase == .resubscribing && self.inFlightTotal == 0 {
            self.becomeActive()
            action.becameActive = true
        }
        return action
    }

    /// The connection dropped or a connect attempt failed. Returns the delay before
    /// the next attempt, or `nil` when the subscriber is closed.
    mutating func connectionLost() -> TimeAmount? {
        self.inFlight.removeAll()
        self.inFlightTotal = 0
        guard self.phase != .closed else { return nil }
        self.phase = .backingOff
        if self.reconnectAtOnce {
            self.reconnectAtOnce = false
            return .zero
        }
        let shift = min(self.failedAttempts, 16)
        self.failedAttempts += 1
        let delay = self.initialDelay.nanoseconds << shift
        return .nanoseconds(min(delay, self.maximumDelay.nanoseconds))
    }

    /// The back-off delay passed; returns whether to connect now.
    mutating func backoffElapsed() -> Bool {
        guard self.phase == .backingOff else { return false }
        self.phase = .connecting
        return true
    }

    /// The server moved: reconnect now, wherever the connection is, without the back-off
    /// that failed attempts on the old server built up.
    mutating func reconnect() -> ReconnectAction {
        switch self.phase {
        case .idle, .closed:
            return .none
        case .resubscribing, .active:
            self.failedAttempts = 0
            self.reconnectAtOnce = true
            return .closeConnection
        case .backingOff:
            self.failedAttempts = 0
            self.phase = .connecting
            return .connectNow
        case .connecting:
            self.failedAttempts = 0
            return .restartConnect
        }
    }

    mutating func close() {
        self.reconnectAtOnce = false
        self.phase = .closed
        self.inFlight.removeAll()
        self.inFlightTotal = 0
    }
}
