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
    /// The newest event position delivered on this loop, and the id (the stream's cursor)
    /// it came with.
    @exclusivity(unchecked) var lastID = SSEEventKey.none
    @exclusivity(unchecked) var lastIDText: [UInt8] = []
}

/// An event's position on `broadcast` (`<milliseconds>-<sequence>`) as two numbers:
/// positions on one channel increase strictly.
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
/// `id: <cursor>` (the broadcast position is read out of it) and `data: {"seq":N,"t":T…`
/// (T is the publisher's clock when it sent).
final class SubscriberHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let request: ByteBuffer
    private let stats: LoopStats
    private let onConnected: () -> Void
    private var scanner = LineScanner()
    /// The start of a line that the previous read cut off.
    private var partial: [UInt8] = []

    /// `readsIDs`: whether the ids hold the broadcast position (see ``LineScanner/readsIDs``).
    init(request: ByteBuffer, stats: LoopStats, peer: Peer, readsIDs: Bool, onConnected: @escaping () -> Void) {
        self.request = request
        self.stats = stats
        self.onConnected = onConnected
        self.scanner.connectedOnHead = peer.connectedOnHead
        self.scanner.readsIDs = readsIDs
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
        LineCutter.lines(of: buffer, partial: &partial) { scanner.line($0, now: now, stats: stats) }
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

/// Cuts reads into lines with `memchr`, without copying a line that one read holds whole;
/// the start of a line that a read cuts off waits in `partial` for the rest.
enum LineCutter {
    /// Calls `line` with each complete line of `buffer` (without its `\n`), the first one
    /// joined to what `partial` held; leaves an unfinished last line in `partial`.
    @inline(__always)
    static func lines(
        of buffer: ByteBuffer,
        partial: inout [UInt8],
        _ line: (UnsafeRawBufferPointer) -> Void
    ) {
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
                    line(UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
                } else {
                    partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
                    partial.withUnsafeBytes { line($0) }
                    partial.removeAll(keepingCapacity: true)
                }
                start = end + 1
            }
        }
    }
}

/// The per-connection scanning state; a value type, kept in a local while a read is
/// scanned. Deliveries go straight into the loop's figures.
struct LineScanner {
    /// The stream is open once the response head arrived (a peer without `__connected`).
    var connectedOnHead = false
    /// Whether `id:` lines hold the broadcast position, so order and duplicates can be
    /// checked; when not, deliveries are only counted.
    var readsIDs = true
    var headersDone = false
    var connectedNow = false
    var lastID = SSEEventKey.none
    var currentID = SSEEventKey.none
    /// The current event's id line, reused from event to event.
    var currentIDText: [UInt8] = []

    mutating func line(_ line: UnsafeRawBufferPointer, now: Int64, stats: LoopStats) {
        var count = line.count
        if count > 0, line[count - 1] == UInt8(ascii: "\r") { count -= 1 }
        if !self.headersDone {
            if count == 0 {
                self.headersDone = true
                if self.connectedOnHead { self.connectedNow = true }
            }
            return
        }
        guard count > 0 else { return }
        let line = UnsafeRawBufferPointer(rebasing: line[0..<count])
        switch line[0] {
        case UInt8(ascii: "i") where self.readsIDs && Self.has(line, prefix: "id: "):
            let text = UnsafeRawBufferPointer(rebasing: line[4...])
            if let first = text.first, first >= 48, first <= 57 {
                // An id of the earlier kind, `<ms>-<seq>` (a cursor starts with a letter):
                // the generator measures older nodes too.
                var index = 4
                let milliseconds = Self.number(line, &index)
                index += 1
                self.currentID = SSEEventKey(milliseconds: milliseconds, sequence: Self.number(line, &index))
            } else {
                self.currentID = CursorReader.broadcastPosition(text)
            }
            self.currentIDText.removeAll(keepingCapacity: true)
            self.currentIDText.append(contentsOf: text)
        case UInt8(ascii: "d") where Self.has(line, prefix: "data: "):
            guard var index = Self.find(line, #""t":"#, from: 6) else { return }
            let sentNanos = Self.number(line, &index)
            stats.delivered += 1
            stats.lastDelivery = now
            if !self.readsIDs {
                // Counted only.
            } else if self.currentID == self.lastID {
                stats.duplicates += 1
            } else if self.currentID < self.lastID {
                stats.outOfOrder += 1
            } else {
                self.lastID = self.currentID
                if stats.lastID < self.currentID {
                    stats.lastID = self.currentID
                    stats.lastIDText = self.currentIDText
                }
            }
            _ = stats.latency.record(UInt64(max(0, now - Int64(sentNanos)) / 1_000))
        case UInt8(ascii: "e") where Self.has(line, prefix: "event: __connected"):
            self.connectedNow = true
        default:
            break
        }
    }

    static func has(_ line: UnsafeRawBufferPointer, prefix: StaticString) -> Bool {
        guard line.count >= prefix.utf8CodeUnitCount, let base = line.baseAddress else { return false }
        return memcmp(base, prefix.utf8Start, prefix.utf8CodeUnitCount) == 0
    }

    static func number(_ line: UnsafeRawBufferPointer, _ index: inout Int) -> Int {
        var value = 0
        while index < line.count, line[index] >= 48, line[index] <= 57 {
            value = value * 10 + Int(line[index] - 48)
            index += 1
        }
        return value
    }

    /// The index just past the first `needle` at or after `start`.
    static func find(_ line: UnsafeRawBufferPointer, _ needle: StaticString, from start: Int) -> Int? {
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

/// Reads a node's cursor id (see Sources/Fanfare/Streams/Cursor.swift) without allocating:
/// base64url of `[1][varint base]` then, per channel, `[4-byte FNV-1a tag][varint delta]`
/// and, when the delta is not 0, `[varint sequence]`.
enum CursorReader {
    static let broadcastTag: UInt32 = {
        var hash: UInt32 = 0x811C_9DC5
        for byte in "broadcast".utf8 {
            hash ^= UInt32(byte)
            hash = hash &* 0x0100_0193
        }
        return hash
    }()

    /// base64url's value of each byte, 255 for bytes outside its alphabet.
    static let values: [UInt8] = {
        var values = [UInt8](repeating: 255, count: 256)
        for (index, character) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8.enumerated() {
            values[Int(character)] = UInt8(index)
        }
        return values
    }()

    /// The broadcast position in `text`, or ``SSEEventKey/none`` if it has none.
    static func broadcastPosition(_ text: UnsafeRawBufferPointer) -> SSEEventKey {
        guard text.count <= 512 else { return .none }
        return Self.values.withUnsafeBufferPointer { values in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: text.count) { bytes in
                var count = 0
                var chunk: UInt32 = 0
                var bits = 0
                for character in text {
                    let value = values[Int(character)]
                    if value == 255 { return .none }
                    chunk = chunk << 6 | UInt32(value)
                    bits += 6
                    if bits >= 8 {
                        bits -= 8
                        bytes[count] = UInt8(truncatingIfNeeded: chunk >> UInt32(bits))
                        count += 1
                    }
                }
                return Self.position(UnsafeBufferPointer(rebasing: bytes[0..<count]))
            }
        }
    }

    private static func position(_ bytes: UnsafeBufferPointer<UInt8>) -> SSEEventKey {
        guard bytes.count > 1, bytes[0] == 1 else { return .none }
        var index = 1
        func varint() -> Int? {
            var value = 0
            var shift = 0
            while index < bytes.count, shift < 63 {
                let byte = bytes[index]
                index += 1
                value |= Int(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
            return nil
        }
        guard let base = varint() else { return .none }
        while index + 4 <= bytes.count {
            let tag =
                UInt32(bytes[index]) << 24 | UInt32(bytes[index + 1]) << 16 | UInt32(bytes[index + 2]) << 8
                | UInt32(bytes[index + 3])
            index += 4
            guard let delta = varint() else { return .none }
            var sequence = 0
            if delta != 0 {
                guard let value = varint() else { return .none }
                sequence = value
            }
            if tag == Self.broadcastTag {
                return delta == 0 ? .none : SSEEventKey(milliseconds: base + delta - 1, sequence: sequence)
            }
        }
        return .none
    }
}
