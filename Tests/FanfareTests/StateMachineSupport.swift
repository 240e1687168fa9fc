import FanfareAPI
import NIOCore

@testable import Fanfare

/// Events and pages for the state machine tests: channel `c`, positions `<n>-0`.
enum Events {
    static func position(_ n: Int) -> StreamPosition {
        n == 0 ? .zero : StreamPosition(milliseconds: UInt64(n), sequence: 0)
    }

    /// The event at `n` whose predecessor is `n - 1` (or `after`).
    static func event(_ n: Int, after: Int? = nil, channel: String = "c") -> BusEvent {
        BusEvent(
            channel: channel,
            position: self.position(n),
            predecessor: self.position(after ?? n - 1),
            body: ByteBuffer(string: "data: \(n)\n\n")
        )
    }

    static func page(_ range: ClosedRange<Int>, head: Int, channel: String = "c") -> HistoryPage {
        HistoryPage(status: .ok, head: self.position(head), events: range.map { self.event($0, channel: channel) })
    }

    static func empty(head: Int, _ status: HistoryPage.Status = .ok) -> HistoryPage {
        HistoryPage(status: status, head: self.position(head), events: [])
    }
}

extension ChannelSubscriptions.Action {
    /// A short name for comparing action lists in tests.
    var summary: String {
        switch self {
        case .subscribe(let channels, let generation): "subscribe \(channels) #\(generation)"
        case .unsubscribe(let channels): "unsubscribe \(channels)"
        case .readHead(let channel, let generation): "head \(channel) #\(generation)"
        case .readHistory(let channel, let after, _): "read \(channel) after \(after.milliseconds)"
        case .deliver(let events): "deliver \(events.map { $0.position.milliseconds })"
        case .attach(_, let positions): "attach \(positions.map(\.milliseconds))"
        case .fail: "fail"
        case .reset(let channel, let status, let position, let from):
            "reset \(channel) \(status) to \(position.milliseconds) from \(from.milliseconds)"
        }
    }
}

extension StreamStateMachine.Output {
    var summary: String {
        switch self {
        case .connected(let cursor): "connected \(cursor.positions.map(\.milliseconds))"
        case .event(let event, let cursor):
            "event \(event.position.milliseconds) \(cursor.positions.map(\.milliseconds))"
        case .reset(let channels, let reason, let cursor):
            "reset \(channels) \(reason.rawValue) \(cursor.positions.map(\.milliseconds))"
        case .read(let index, let after): "read \(index) after \(after.milliseconds)"
        case .end(let channel): "end \(channel)"
        }
    }
}

/// A small seeded generator (SplitMix64), so failures repeat.
struct SplitMix: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { self.state = seed }
    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
