internal import NIOCore
import Synchronization

/// The in-memory bus of an embedded node: positions, per-channel history and fan-out
/// without Redis, with the semantics of the Redis one.
///
/// Positions have the Redis shape (`<milliseconds>-<sequence>`) and increase strictly per
/// channel. Each channel keeps its own bounded history, trimmed by count and age and
/// dropped when idle. Delivery is synchronous into the hub, which hops to each loop itself.
final class EmbeddedEventBus: EventBus {
    private struct Channel {
        var history = CircularBuffer<BusEvent>()
        var last = StreamPosition.zero
        var lastPublish: Int64 = 0
        /// Its newest event is final: it refuses publishes.
        var finished = false
    }

    private struct Remembered {
        var position: StreamPosition
        var expires: Int64
    }

    private struct State {
        var deliver: (@Sendable (BusEvent) -> Void)?
        var disconnect: (@Sendable (DisconnectRequest) -> Void)?
        /// Answers to disconnect requests by id, the newest few.
        var answers: [(id: String, closed: Int)] = []
        var subscribed = Set<String>()
        var channels: [String: Channel] = [:]
        var idempotency: [String: Remembered] = [:]
        var publishes = 0
    }

    private let state = Mutex(State())
    private let eventLoop: any EventLoop
    private let policy: HistoryPolicy

    init(eventLoop: any EventLoop, policy: HistoryPolicy) {
        self.eventLoop = eventLoop
        self.policy = policy
    }

    func start(
        deliver: @escaping @Sendable (BusEvent) -> Void,
        subscriptions: @escaping @Sendable (SubscriptionChange) -> Void,
        disconnect: @escaping @Sendable (DisconnectRequest) -> Void
    ) async throws {
        self.state.withLock {
            $0.deliver = deliver
            $0.disconnect = disconnect
        }
        subscriptions(.ready)
    }

    /// In process the one node is asked when it has the channel.
    func sendDisconnect(_ request: DisconnectRequest, on eventLoop: any EventLoop) async throws -> Int {
        let disconnect = self.state.withLock { $0.subscribed.contains(request.channel) ? $0.disconnect : nil }
        guard let disconnect else { return 0 }
        disconnect(request)
        return 1
    }

    func answerDisconnect(_ request: DisconnectRequest, closed: Int) async throws {
        self.state.withLock { state in
            state.answers.append((request.id, closed))
            // Each request is read within seconds of its answer: a few are plenty.
            if state.answers.count > 64 { state.answers.removeFirst(state.answers.count - 64) }
        }
    }

    func disconnectAnswers(_ request: DisconnectRequest, on eventLoop: any EventLoop) async throws -> [Int] {
        self.state.withLock { state in state.answers.filter { $0.id == request.id }.map(\.closed) }
    }

    func subscribe(_ channels: [String]) -> EventLoopFuture<Void> {
        self.state.withLock { state in
            for channel in channels { state.subscribed.insert(channel) }
        }
        return self.eventLoop.makeSucceededVoidFuture()
    }

    func unsubscribe(_ channels: [String]) {
        self.state.withLock { state in
            for channel in channels { state.subscribed.remove(channel) }
        }
    }

    var isReady: Bool { true }

    /// In process, delivery cannot stall: nothing to probe.
    func probeChannels(node: String) -> [String] { [] }

    func publishProbe(_ channel: String, sequence: UInt64) async throws {}

    /// In process there are no connections: every loop publishes the same way.
    func publish(_ request: PublishRequest, on eventLoop: any EventLoop) async throws -> PublishResult {
        let body = try EventFrame.body(event: request.event, data: request.data)
        let policy = self.policy
        // Positions are assigned and events delivered under one lock, so delivery follows
        // position order.
        return try self.state.withLock { state -> Result<PublishResult, FanfareError> in
            let now = WallClock.milliseconds()
            let remembered = request.idempotencyKey.map { "\(request.channel)\u{0}\($0)" }
            if let remembered, let seen = state.idempotency[remembered], seen.expires > now {
                return .success(PublishResult(position: seen.position, sent: false, duplicate: true))
            }
            var channel = Self.live(state.channels[request.channel], now: now, policy: policy) ?? Channel()
            if channel.finished { return .failure(Self.finished) }
            let milliseconds = max(UInt64(max(0, now)), channel.last.milliseconds)
            let position = StreamPosition(
                milliseconds: milliseconds,
                sequence: milliseconds == channel.last.milliseconds && channel.last != .zero
                    ? channel.last.sequence + 1 : 0
            )
            let event = BusEvent(
                channel: request.channel,
                position: position,
                predecessor: channel.last,
                body: body,
                isFinal: request.isFinal
            )
            channel.history.append(event)
            channel.last = position
            channel.finished = request.isFinal
            channel.lastPublish = now
            if channel.history.count > max(1, policy.maxLength) { channel.history.removeFirst() }
            if policy.maxAgeMilliseconds > 0 {
                let horizon = UInt64(max(0, now - policy.maxAgeMilliseconds))
                while let first = channel.history.first, first.position.milliseconds < horizon {
                    channel.history.removeFirst()
                }
            }
            state.channels[request.channel] = channel
            if let remembered {
                state.idempotency[remembered] = Remembered(
                    position: position,
                    expires: now + policy.idempotencyWindowMilliseconds
                )
            }
            state.publishes += 1
            if state.publishes % 1024 == 0 { Self.sweep(&state, now: now, policy: policy) }
            let sent = state.subscribed.contains(request.channel)
            if sent { state.deliver?(event) }
            return .success(PublishResult(position: position, sent: sent, duplicate: false))
        }.get()
    }

    private static let finished = FanfareError(
        .conflict,
        "the channel ended with a final event; publish on another channel"
    )

    func heads(of channels: [String], on eventLoop: any EventLoop) async throws -> [StreamPosition] {
        let policy = self.policy
        let now = WallClock.milliseconds()
        return self.state.withLock { state in
            channels.map { Self.live(state.channels[$0], now: now, policy: policy)?.last ?? .zero }
        }
    }

    func read(
        _ name: String,
        after position: StreamPosition,
        limit: Int,
        maxBytes: Int,
        on eventLoop: any EventLoop
    ) async throws -> HistoryPage {
        let policy = self.policy
        return self.state.withLock { state in
            guard let channel = Self.live(state.channels[name], now: WallClock.milliseconds(), policy: policy) else {
                return HistoryPage(status: position == .zero ? .ok : .gone, head: .zero, events: [])
            }
            let final = channel.finished
            if position > channel.last {
                return HistoryPage(status: .unknown, head: channel.last, events: [], isFinal: final)
            }
            if position == channel.last {
                return HistoryPage(status: .ok, head: channel.last, events: [], isFinal: final)
            }
            guard let start = channel.history.firstIndex(where: { $0.position > position }) else {
                return HistoryPage(status: .trimmed, head: channel.last, events: [], isFinal: final)
            }
            let count = min(max(1, limit), channel.history.distance(from: start, to: channel.history.endIndex))
            var events: [BusEvent] = []
            var bytes = 0
            for event in channel.history[start..<channel.history.index(start, offsetBy: count)] {
                bytes += event.body.readableBytes
                if bytes > maxBytes, !events.isEmpty { break }
                events.append(event)
            }
            let first = channel.history[start].predecessor
            // Events after the position are missing when the first one left does not follow
            // on from it; a history that starts over from nothing was lost, not trimmed.
            let status: HistoryPage.Status = first == position ? .ok : first == .zero ? .gone : .trimmed
            return HistoryPage(status: status, head: channel.last, events: events, isFinal: final)
        }
    }

    func shutdown() async {
        self.state.withLock {
            $0.deliver = nil
            $0.disconnect = nil
        }
    }

    /// `channel`, unless it has been idle past the expiry (then its history is gone).
    private static func live(_ channel: Channel?, now: Int64, policy: HistoryPolicy) -> Channel? {
        guard let channel, now - channel.lastPublish < policy.idleExpiryMilliseconds else { return nil }
        return channel
    }

    /// Forgets idle channels and expired idempotency keys.
    private static func sweep(_ state: inout State, now: Int64, policy: HistoryPolicy) {
        state.channels = state.channels.filter { now - $0.value.lastPublish < policy.idleExpiryMilliseconds }
        state.idempotency = state.idempotency.filter { $0.value.expires > now }
    }
}
