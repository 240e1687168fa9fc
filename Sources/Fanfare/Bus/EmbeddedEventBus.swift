internal import NIOCore
import Synchronization

/// The in-memory bus of an embedded node: ids, fan-out and counts without Redis.
///
/// Ids have the same shape as the Redis ones (`<milliseconds>-<sequence>`) and increase
/// strictly. Delivery is synchronous into the hub, which hops to each loop itself.
final class EmbeddedEventBus: EventBus {
    private struct State {
        var deliver: (@Sendable (String, ByteBuffer) -> Void)?
        var subscribed: [String: Int] = [:]
        var lastMilliseconds: Int64 = 0
        var sequence: Int64 = 0
        var history = CircularBuffer<HistoryEntry>()
    }

    private let state = Mutex(State())
    private let eventLoop: any EventLoop
    /// Answers how many local connections a channel has (the registry is local here).
    private let connectionCount = Mutex<(@Sendable (String) -> Int)?>(nil)
    private let historyMaxLength: Int
    private let historyMaxAgeMilliseconds: Int64

    init(
        eventLoop: any EventLoop,
        historyMaxLength: Int,
        historyMaxAgeSeconds: Int
    ) {
        self.eventLoop = eventLoop
        self.historyMaxLength = max(1, historyMaxLength)
        self.historyMaxAgeMilliseconds = Int64(max(0, historyMaxAgeSeconds)) * 1_000
    }

    /// Where publish answers get their `connections` from: the node's hub, made after the bus.
    func countConnections(_ count: @escaping @Sendable (String) -> Int) {
        self.connectionCount.withLock { $0 = count }
    }

    func start(
        deliver: @escaping @Sendable (String, ByteBuffer) -> Void,
        resubscribed: @escaping @Sendable () -> Void
    ) async throws {
        self.state.withLock { $0.deliver = deliver }
    }

    func subscribe(_ channels: [String]) -> EventLoopFuture<Void> {
        self.state.withLock { state in
            for channel in channels { state.subscribed[channel, default: 0] += 1 }
        }
        return self.eventLoop.makeSucceededVoidFuture()
    }

    func unsubscribe(_ channels: [String]) {
        self.state.withLock { state in
            for channel in channels {
                let count = (state.subscribed[channel] ?? 0) - 1
                state.subscribed[channel] = count > 0 ? count : nil
            }
        }
    }

    var isReady: Bool { true }

    func publish(_ request: PublishRequest) async throws -> PublishResult {
        // Ids are assigned and frames delivered under one lock, so delivery follows id order.
        let (id, sent) = try self.state.withLock { state in
            let milliseconds = max(WallClock.milliseconds(), state.lastMilliseconds)
            if milliseconds == state.lastMilliseconds {
                state.sequence += 1
            } else {
                state.lastMilliseconds = milliseconds
                state.sequence = 0
            }
            let id = "\(milliseconds)-\(state.sequence)"
            let frame = try EventFrame.encode(id: id, event: request.event, data: request.data)
            let entry = HistoryEntry(
                id: EventID(milliseconds: UInt64(milliseconds), sequence: UInt64(state.sequence)),
                channel: request.channel,
                frame: frame
            )
            state.history.append(entry)
            if state.history.count > self.historyMaxLength { state.history.removeFirst() }
            if self.historyMaxAgeMilliseconds > 0 {
                let horizon = UInt64(max(0, milliseconds - self.historyMaxAgeMilliseconds))
                while let first = state.history.first, first.id.milliseconds < horizon { state.history.removeFirst() }
            }
            state.deliver?(request.channel, frame)
            return (id, state.subscribed[request.channel] != nil)
        }
        let connections = self.connectionCount.withLock { $0 }?(request.channel) ?? 0
        return PublishResult(id: id, sent: sent, connections: connections)
    }

    func replay(after id: EventID, channels: Set<String>) async throws -> Replay {
        self.state.withLock { state in
            guard let oldest = state.history.first?.id, let newest = state.history.last?.id else {
                return .gap(oldest: nil)
            }
            guard id >= oldest, id <= newest else { return .gap(oldest: oldest) }
            return .events(state.history.filter { $0.id > id && channels.contains($0.channel) })
        }
    }

    func shutdown() async {
        self.state.withLock { $0.deliver = nil }
    }
}
