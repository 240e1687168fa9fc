import Foundation
import Histogram
import NIOCore
import Synchronization

/// What the followers of one event loop found, besides the deliveries and latency their
/// ``LoopStats`` hold. Touched only on its loop while followers are open; read by the main
/// task once every follower has closed.
final class RunTally: @unchecked Sendable {
    /// Per run, followers that had all its events once and in order, then `__end`, then
    /// the end of the response.
    var perfect: [UInt8]
    /// Events of the run that never arrived, summed over followers.
    var lost = 0
    /// Followers answered with something other than 200 (204: a finished run).
    var refused = 0
    /// Followers that got `__end`, and those whose response then ended.
    var ended = 0
    var endedAndClosed = 0
    /// Events after `__end`, which ends the run.
    var afterEnd = 0
    /// Token events delivered (the final `complete` not counted).
    var tokens = 0

    init(runs: Int) {
        self.perfect = Array(repeating: 0, count: runs)
    }
}

/// What every loop's followers share, from any thread.
final class RunProgress: Sendable {
    /// Followers that had their `__connected`.
    let connected = Atomic<Int>(0)
    /// Followers that had their `__connected` or closed before it: the main task starts
    /// the runs once every one has.
    let settled = Atomic<Int>(0)
    /// Followers whose connection closed: the main task polls it.
    let closed = Atomic<Int>(0)
    /// Set once the main task gave up waiting and closes what is still open: a response
    /// that ends from then on did not end by itself.
    let givenUp = Atomic<Bool>(false)
}

/// Follows one run (`GET /api/sse/runs/{channel}?from=start`) like ``SubscriberHandler``
/// follows a stream: each read cut into lines (``LineCutter``), no parser objects, no
/// allocation per event. Every event's payload carries `"seq":N,"t":T`: N numbers the
/// run's events from 0 (the final `complete` event is N = tokens), T is the publisher's
/// clock when it sent. A bit per event tells what arrived twice or was never seen.
final class RunFollowerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let request: ByteBuffer
    private let run: Int
    /// The run's events: its tokens and the final one.
    private let events: Int
    private let stats: LoopStats
    private let tally: RunTally
    private let progress: RunProgress
    private let onConnected: () -> Void
    private var partial: [UInt8] = []
    private var seen: [UInt64]
    private var distinct = 0
    private var highest = -1
    private var status = 0
    private var headersDone = false
    private var sawEnd = false
    private var flawed = false
    private var settled = false

    init(
        request: ByteBuffer,
        run: Int,
        tokens: Int,
        stats: LoopStats,
        tally: RunTally,
        progress: RunProgress,
        onConnected: @escaping () -> Void
    ) {
        self.request = request
        self.run = run
        self.events = tokens + 1
        self.stats = stats
        self.tally = tally
        self.progress = progress
        self.onConnected = onConnected
        self.seen = Array(repeating: 0, count: (tokens + 64) / 64)
    }

    /// The request that follows `channel` from its first event.
    static func request(channel: String, host: String) -> ByteBuffer {
        ByteBuffer(
            string: "GET /api/sse/runs/\(channel)?from=start HTTP/1.1\r\nHost: \(host)\r\n"
                + "Accept: text/event-stream\r\n\r\n"
        )
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(NIOAny(self.request), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        let now = LoadClock.nanoseconds()
        var partial: [UInt8] = []
        swap(&partial, &self.partial)
        var connected = false
        LineCutter.lines(of: buffer, partial: &partial) { line in
            if self.line(line, now: now) { connected = true }
        }
        swap(&partial, &self.partial)
        self.stats.progress.store(self.stats.delivered, ordering: .relaxed)
        if connected {
            self.stats.connected += 1
            self.settle()
            self.onConnected()
        }
        if self.headersDone, self.status != 200 {
            // A 204 (or an error) says nothing will come: the follower is done.
            context.close(promise: nil)
        }
    }

    /// Reads one line; returns whether it was the `__connected` event.
    private func line(_ line: UnsafeRawBufferPointer, now: Int64) -> Bool {
        var count = line.count
        if count > 0, line[count - 1] == UInt8(ascii: "\r") { count -= 1 }
        let line = UnsafeRawBufferPointer(rebasing: line[0..<count])
        if !self.headersDone {
            if self.status == 0, count >= 12, LineScanner.has(line, prefix: "HTTP/1.1 ") {
                var index = 9
                self.status = LineScanner.number(line, &index)
            }
            if count == 0 { self.headersDone = true }
            return false
        }
        guard count > 0 else { return false }
        switch line[0] {
        case UInt8(ascii: "d") where LineScanner.has(line, prefix: "data: "):
            guard var index = LineScanner.find(line, #""seq":"#, from: 6) else { return false }
            let seq = LineScanner.number(line, &index)
            guard var time = LineScanner.find(line, #""t":"#, from: index) else { return false }
            let sentNanos = LineScanner.number(line, &time)
            self.event(seq: seq, sentNanos: Int64(sentNanos), now: now)
        case UInt8(ascii: "e") where LineScanner.has(line, prefix: "event: __"):
            if LineScanner.has(line, prefix: "event: __end") {
                self.sawEnd = true
                self.tally.ended += 1
            } else if LineScanner.has(line, prefix: "event: __connected") {
                return true
            }
        default:
            break
        }
        return false
    }

    private func event(seq: Int, sentNanos: Int64, now: Int64) {
        let stats = self.stats
        stats.delivered += 1
        stats.lastDelivery = now
        _ = stats.latency.record(UInt64(max(0, now - sentNanos) / 1_000))
        if self.sawEnd {
            self.tally.afterEnd += 1
            self.flawed = true
        }
        guard seq >= 0, seq < self.events else {
            // Not an event of this run (its seq is past the final one): counted as out of order.
            stats.outOfOrder += 1
            self.flawed = true
            return
        }
        if seq < self.events - 1 { self.tally.tokens += 1 }
        let (word, bit) = (seq / 64, UInt64(1) << UInt64(seq % 64))
        if self.seen[word] & bit != 0 {
            stats.duplicates += 1
            self.flawed = true
            return
        }
        self.seen[word] |= bit
        self.distinct += 1
        if seq < self.highest {
            stats.outOfOrder += 1
            self.flawed = true
        }
        self.highest = max(self.highest, seq)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let lost = self.events - self.distinct
        let endedByItself = self.sawEnd && !self.progress.givenUp.load(ordering: .relaxed)
        self.tally.lost += lost
        if self.status != 200 { self.tally.refused += 1 }
        if endedByItself { self.tally.endedAndClosed += 1 }
        if self.status == 200, endedByItself, !self.flawed, lost == 0 {
            self.tally.perfect[self.run] += 1
        }
        self.settle()
        self.progress.closed.add(1, ordering: .relaxed)
        context.fireChannelInactive()
    }

    private func settle() {
        guard !self.settled else { return }
        self.settled = true
        self.progress.settled.add(1, ordering: .relaxed)
    }
}
