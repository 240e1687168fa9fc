import FanfareAPI
import Foundation
import NIOCore

@testable import Fanfare

/// What the simulated streams wrote, checked after every step, and the simulated Redis.
extension ScheduleSimulation {
    // MARK: What the streams write, checked

    mutating func observe(_ outputs: [StreamStateMachine.Output], _ stream: Stream) throws {
        for output in outputs {
            self.note("\(stream.id) \(stream.channels): \(output)")
            switch output {
            case .connected(let cursor):
                guard !stream.connected else { throw self.failure("__connected written twice") }
                stream.connected = true
                stream.seen = cursor.positions
                stream.delivered = stream.channels.map { _ in [] }
            case .event(let event, let cursor):
                guard let index = stream.channels.firstIndex(of: event.channel) else {
                    throw self.failure("an event of \(event.channel) on a stream without it")
                }
                try self.saw(event, in: stream, index: index)
                guard cursor.positions == stream.seen else {
                    throw self.failure("a replayed event's id is not the stream's position")
                }
            case .reset(let channels, let reason, let cursor):
                guard stream.connected else { throw self.failure("__reset before __connected") }
                for (index, channel) in stream.channels.enumerated()
                where channels.contains(channel) && reason == .trimmed && cursor.positions[index] <= stream.seen[index]
                {
                    throw self.failure(
                        "a trimmed reset moved \(channel) back from \(stream.seen[index]) to \(cursor.positions[index])"
                    )
                }
                // Only the channels named may move: to where the reset says.
                for (index, channel) in stream.channels.enumerated() where !channels.contains(channel) {
                    guard cursor.positions[index] == stream.seen[index] else {
                        throw self.failure("a reset moved \(channel), which it did not name")
                    }
                }
                stream.seen = cursor.positions
            case .read(let index, let after):
                stream.read = (index, after)
            case .end:
                throw self.failure("an ordinary stream ended")
            }
        }
    }

    /// Writes `event` of channel `index`: it must follow on from what the client saw there
    /// (its predecessor is the client's position), or else something was lost without a
    /// `__reset` naming the channel; and it must be newer (no repeat, no reordering).
    mutating func saw(_ event: BusEvent, in stream: Stream, index: Int) throws {
        self.checks += 1
        guard stream.connected else { throw self.failure("an event before __connected") }
        self.note("\(stream.id) writes \(event.channel) \(event.position) after \(event.predecessor)")
        let position = stream.seen[index]
        guard event.position > position else {
            throw self.failure("\(event.channel) \(event.position) again or out of order after \(position)")
        }
        guard event.predecessor == position else {
            throw self.failure(
                "\(event.channel): \(event.position) follows \(event.predecessor), the client had \(position): lost without a reset"
            )
        }
        guard stream.delivered[index].insert(event.position).inserted else {
            throw self.failure("\(event.channel) \(event.position) written twice")
        }
        stream.seen[index] = event.position
    }

    func checkBounds() throws {
        // Each channel of a stream keeps at most the bound of live events while it catches
        // up; the node likewise.
        for stream in self.streams
        where stream.machine.bufferedEventCount > self.bufferLimit * stream.channels.count {
            throw self.failure("a stream holds \(stream.machine.bufferedEventCount) live events")
        }
        guard self.node.largestBuffer <= self.bufferLimit else {
            throw self.failure("the node holds \(self.node.largestBuffer) live events for one channel")
        }
    }

    /// Answers everything, with the subscriber connected, until nothing is left to do.
    mutating func settle() throws {
        try self.reconnect()
        var rounds = 0
        while !(self.pushes.isEmpty && self.heads.isEmpty && self.nodeReads.isEmpty && self.items.isEmpty
            && !self.streams.contains(where: { $0.read != nil }))
        {
            rounds += 1
            guard rounds < 100_000 else {
                throw self.failure(
                    "the node does not settle: \(self.pushes.count) pushes, \(self.heads.count) head reads, \(self.nodeReads) node reads, \(self.items.count) items, \(self.streams.filter { $0.read != nil }.map { "\($0.channels) \($0.read!) seen \($0.seen) \($0.machine)" }) stream reads; histories \(self.histories.mapValues { "\($0.last) \($0.events.map(\.position))" })"
                )
            }
            if !self.pushes.isEmpty { try self.deliverPush() }
            if !self.heads.isEmpty { try self.answerHead() }
            if !self.nodeReads.isEmpty {
                let (channel, after, generation) = self.nodeReads.removeFirst()
                let page = self.page(channel, after: after)
                self.note(
                    "node read \(channel) after \(after): \(page.status) head \(page.head) \(page.events.map(\.position)) preds \(page.events.map(\.predecessor))"
                )
                try self.perform(self.node.historyRead(channel, page: page, generation: generation))
            }
            if !self.items.isEmpty { try self.applyItem() }
            try self.answerStreamRead()
        }
    }

    /// Settled, every stream is attached and at every channel's newest position.
    func checkCaughtUp() throws {
        for stream in self.streams {
            guard stream.connected else {
                throw self.failure(
                    "a stream on \(stream.channels) was never attached; node: \(self.node); attached: \(stream.attached) pending pushes \(self.pushes.count) connected \(self.connected) subscribed \(self.subscribed)"
                )
            }
            for (index, channel) in stream.channels.enumerated() where stream.seen[index] != self.head(channel) {
                throw self.failure(
                    "a stream is at \(stream.seen[index]) on \(channel), whose head is \(self.head(channel))"
                )
            }
        }
    }

    // MARK: The simulated Redis

    func head(_ channel: String) -> StreamPosition {
        guard let history = self.histories[channel], history.exists else { return .zero }
        return history.last
    }

    /// What `<prefix>_read` answers.
    func page(_ channel: String, after: StreamPosition) -> HistoryPage {
        guard let history = self.histories[channel], history.exists else {
            return HistoryPage(status: after == .zero ? .ok : .gone, head: .zero, events: [])
        }
        if after > history.last { return HistoryPage(status: .unknown, head: history.last, events: []) }
        if after == history.last { return HistoryPage(status: .ok, head: history.last, events: []) }
        let events = Array(history.events.filter { $0.position > after }.prefix(self.pageSize))
        let first = events.first?.predecessor
        let status: HistoryPage.Status = first == after ? .ok : first == .zero ? .gone : .trimmed
        return HistoryPage(status: status, head: history.last, events: events)
    }

    func failure(_ message: String) -> Failure {
        Failure(
            seed: self.seed,
            step: self.step,
            message: message + (self.tracing ? "\n" + self.trace.joined(separator: "\n") : "")
        )
    }
}
