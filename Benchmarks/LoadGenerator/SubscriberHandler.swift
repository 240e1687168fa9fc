import Foundation
import Histogram
import NIOCore
import Synchronization

/// Per-loop results; touched only on its loop, merged at the end.
final class LoopStats: @unchecked Sendable {
    /// `delivered`, readable from any thread (only this loop writes it).
    let progress = Atomic<Int>(0)
    // @unchecked: each instance is used on one event loop only while the run lasts and
    // read by the main task after every connection of that loop has closed.
    //
    // The fields below change on every delivery. Their accesses never overlap (one loop,
    // no re-entrancy), so the dynamic exclusivity check, which costs more than the
    // update itself, is switched off for them.
    @exclusivity(unchecked) var connected = 0
    @exclusivity(unchecked) var delivered = 0
    @exclusivity(unchecked) var duplicates = 0
    @exclusivity(unchecked) var outOfOrder = 0
    @exclusivity(unchecked) var latency = Histogram<UInt64>(
        highestTrackableValue: 120_000_000,
        numberOfSignificantValueDigits: .three
    )
    @exclusivity(unchecked) var lastDelivery: Int64 = 0
    /// The newest event id delivered on this loop.
    @exclusivity(unchecked) var lastID = SSEEventKey.none
}

/// An event id `<milliseconds>-<sequence>` as two numbers: ids increase strictly.
struct SSEEventKey: Comparable, Sendable, CustomStringConvertible {
    var milliseconds: Int
    var sequence: Int

    static let none = SSEEventKey(milliseconds: -1, sequence: -1)

    static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.milliseconds, lhs.sequence) < (rhs.milliseconds, rhs.sequence)
    }

    var description: String { "\(self.milliseconds)-\(self.sequence)" }
}

/// One SSE subscriber, as lean as possible: no parser objects, no per-event strings or
/// allocations. Each read is cut into lines with `memchr`; a line cut off by the end of a
/// read waits in a small buffer for the rest. Lines that matter are `event: __connected`,
/// `id: <ms>-<seq>` and `data: {"seq":N,"t":T…` (T is the publisher's clock when it sent).
final class SubscriberHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let request: ByteBuffer
    private let stats: LoopStats
    private let onConnected: () -> Void
    private var scanner = LineScanner()
    /// The start of a line that the previous read cut off.
    private var partial: [UInt8] = []

    init(request: ByteBuffer, stats: LoopStats, onConnected: @escaping () -> Void) {
        self.request = request
        self.stats = stats
        self.onConnected = onConnected
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(NIOAny(self.request), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        // Everything in one read arrived at the same moment: one clock read serves all.
        let now = LoadClock.nanoseconds()
        // Scanner and partial line live in locals while the read is scanned (taken, not
        // copied, so nothing is copied on write).
        var scanner = self.scanner
        var partial: [UInt8] = []
        swap(&partial, &self.partial)
        let stats = self.stats
        buffer.withUnsafeReadableBytes { bytes in
            guard let base = bytes.baseAddress else { return }
            var start = 0
            while start < bytes.count {
                guard let found = memchr(base + start, Int32(UInt8(ascii: "\n")), bytes.count - start) else {
                    partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start...]))
                    return
                }
                let end = base.distance(to: UnsafeRawPointer(found))
                if partial.isEmpty {
                    scanner.line(UnsafeRawBufferPointer(rebasing: bytes[start..<end]), now: now, stats: stats)
                } else {
                    partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
                    partial.withUnsafeBytes { scanner.line($0, now: now, stats: stats) }
                    partial.removeAll(keepingCapacity: true)
                }
                start = end + 1
            }
        }
        swap(&partial, &self.partial)
        if scanner.connectedNow {
            scanner.connectedNow = false
            stats.connected += 1
            self.onConnected()
        }
        self.scanner = scanner
        stats.progress.store(stats.delivered, ordering: .relaxed)
    }
}

/// The per-connection scanning state; a value type, kept in a local while a read is
/// scanned. Deliveries go straight into the loop's figures.
struct LineScanner {
    var headersDone = false
    var connectedNow = false
    var lastID = SSEEventKey.none
    var currentID = SSEEventKey.none

    mutating func line(_ line: UnsafeRawBufferPointer, now: Int64, stats: LoopStats) {
        var count = line.count
        if count > 0, line[count - 1] == UInt8(ascii: "\r") { count -= 1 }
        if !self.headersDone {
            if count == 0 { self.headersDone = true }
            return
        }
        guard count > 0 else { return }
        let line = UnsafeRawBufferPointer(rebasing: line[0..<count])
        switch line[0] {
        case UInt8(ascii: "i") where Self.has(line, prefix: "id: "):
            var index = 4
            let milliseconds = Self.number(line, &index)
            index += 1
            self.currentID = SSEEventKey(milliseconds: milliseconds, sequence: Self.number(line, &index))
        case UInt8(ascii: "d") where Self.has(line, prefix: "data: "):
            guard var index = Self.find(line, #""t":"#, from: 6) else { return }
            let sentNanos = Self.number(line, &index)
            stats.delivered += 1
            stats.lastDelivery = now
            if self.currentID == self.lastID {
                stats.duplicates += 1
            } else if self.currentID < self.lastID {
                stats.outOfOrder += 1
            } else {
                self.lastID = self.currentID
                if stats.lastID < self.currentID { stats.lastID = self.currentID }
            }
            _ = stats.latency.record(UInt64(max(0, now - Int64(sentNanos)) / 1_000))
        case UInt8(ascii: "e") where Self.has(line, prefix: "event: __connected"):
            self.connectedNow = true
        default:
            break
        }
    }

    private static func has(_ line: UnsafeRawBufferPointer, prefix: StaticString) -> Bool {
        guard line.count >= prefix.utf8CodeUnitCount, let base = line.baseAddress else { return false }
        return memcmp(base, prefix.utf8Start, prefix.utf8CodeUnitCount) == 0
    }

    private static func number(_ line: UnsafeRawBufferPointer, _ index: inout Int) -> Int {
        var value = 0
        while index < line.count, line[index] >= 48, line[index] <= 57 {
            value = value * 10 + Int(line[index] - 48)
            index += 1
        }
        return value
    }

    /// The index just past the first `needle` at or after `start`.
    private static func find(_ line: UnsafeRawBufferPointer, _ needle: StaticString, from start: Int) -> Int? {
        guard let base = line.baseAddress else { return nil }
        let length = needle.utf8CodeUnitCount
        var index = start
        while index + length <= line.count {
            guard let found = memchr(base + index, Int32(needle.utf8Start.pointee), line.count - length + 1 - index)
            else { return nil }
            index = base.distance(to: UnsafeRawPointer(found))
            if memcmp(found, needle.utf8Start, length) == 0 { return index + length }
            index += 1
        }
        return nil
    }
}

enum LoadClock {
    static func nanoseconds() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }
}
