import Logging
import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import Fanfare

/// A bus whose history reads wait until the test answers them, so a test can make the
/// subscription drop again while a backfill is still reading.
private final class HeldReadsBus: EventBus {
    private struct Reads {
        var waiting: [(after: EventID, answer: CheckedContinuation<Replay, Never>)] = []
    }
    private let reads = Mutex(Reads())
    private let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    func start(
        deliver: @escaping @Sendable (String, ByteBuffer) -> Void,
        resubscribed: @escaping @Sendable () -> Void
    ) async throws {}
    func subscribe(_ channels: [String]) -> EventLoopFuture<Void> { self.eventLoop.makeSucceededVoidFuture() }
    func unsubscribe(_ channels: [String]) {}
    func publish(_ request: PublishRequest) async throws -> PublishResult {
        throw FanfareError(.unavailable, "not in this test")
    }
    var isReady: Bool { true }
    func shutdown() async {}

    func replay(after id: EventID, channels: Set<String>) async -> Replay {
        await withCheckedContinuation { answer in
            self.reads.withLock { $0.waiting.append((id, answer)) }
        }
    }

    /// Waits for the next history read and answers it with `entries`; returns where it
    /// started.
    func answerNextRead(with entries: [HistoryEntry]) async throws -> EventID {
        try await withDeadline("a history read") {
            while true {
                let read = self.reads.withLock { reads in
                    reads.waiting.isEmpty ? nil : reads.waiting.removeFirst()
                }
                if let read {
                    read.answer.resume(returning: .events(entries))
                    return read.after
                }
                try await Task.sleep(for: .milliseconds(5))
            }
        }
    }

    var readsWaiting: Int { self.reads.withLock { $0.waiting.count } }
}

private final class ContextCatcher: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    var context: ChannelHandlerContext?
    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
}

/// Runs `body`, failing if it takes longer than 10 s.
private func withDeadline<T: Sendable>(
    _ what: String,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(10))
            throw DeadlineExceeded(what: what)
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw DeadlineExceeded(what: what) }
        return first
    }
}

private struct DeadlineExceeded: Error {
    var what: String
}

@Suite struct NodeHubBackfillTests {
    private func event(_ sequence: Int) -> (id: EventID, frame: ByteBuffer) {
        let id = EventID(milliseconds: 1000, sequence: UInt64(sequence))
        return (id, ByteBuffer(string: "id: 1000-\(sequence)\ndata: \(sequence)\n\n"))
    }

    /// What the stream has been written, as the sequence numbers of its events.
    private func written(_ channel: NIOAsyncTestingChannel, count: Int) async throws -> [Int] {
        try await withDeadline("\(count) events on the stream") {
            var sequences: [Int] = []
            while sequences.count < count {
                let buffer = try await channel.waitForOutboundWrite(as: ByteBuffer.self)
                for line in String(buffer: buffer).split(separator: "\n") where line.hasPrefix("data: ") {
                    sequences.append(Int(line.dropFirst(6)) ?? -1)
                }
            }
            return sequences
        }
    }

    @Test func aSecondDropDuringTheBackfillIsBackfilledToo() async throws {
        let channel = NIOAsyncTestingChannel()
        let loop = channel.testingEventLoop
        let bus = HeldReadsBus(eventLoop: loop)
        let hub = NodeHub(group: loop, stagingLoop: loop, bus: bus, logger: Logger(label: "test"))
        try await loop.submit {
            let catcher = ContextCatcher()
            try channel.pipeline.syncOperations.addHandler(catcher)
            guard let context = catcher.context else { throw ChannelError.ioOnClosedChannel }
            _ = hub.register(SSEStream(context: context, clientID: "a", channels: ["broadcast"]))
        }.get()

        // Events 1 and 2 arrive live.
        for sequence in 1...2 { hub.receive(channel: "broadcast", frame: self.event(sequence).frame) }
        await loop.run()
        #expect(try await self.written(channel, count: 2) == [1, 2])

        // The subscription drops (3 is published meanwhile) and comes back: history is read
        // after 2. Event 4 arrives live during the read.
        hub.backfillAfterReconnect(logger: Logger(label: "test"))
        hub.receive(channel: "broadcast", frame: self.event(4).frame)
        // It drops again before the read is answered (5 is published meanwhile), and comes
        // back; 6 arrives live.
        hub.backfillAfterReconnect(logger: Logger(label: "test"))
        hub.receive(channel: "broadcast", frame: self.event(6).frame)

        // The first read saw 3 and 4 only.
        let first = try await bus.answerNextRead(with: [3, 4].map { self.entry($0) })
        #expect(first == EventID("1000-2"))
        // A second read must follow, after 4: it finds 5 and 6.
        let second = try await bus.answerNextRead(with: [5, 6].map { self.entry($0) })
        #expect(second == EventID("1000-4"))
        try await withDeadline("the backfill to finish") {
            while bus.readsWaiting > 0 { try await Task.sleep(for: .milliseconds(5)) }
        }
        // Live again: 7.
        try await Task.sleep(for: .milliseconds(20))
        hub.receive(channel: "broadcast", frame: self.event(7).frame)
        await loop.run()
        #expect(try await self.written(channel, count: 5) == [3, 4, 5, 6, 7])
        #expect(bus.readsWaiting == 0)
        _ = try? await channel.finish()
    }

    private func entry(_ sequence: Int) -> HistoryEntry {
        let event = self.event(sequence)
        return HistoryEntry(id: event.id, channel: "broadcast", frame: event.frame)
    }
}
