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
    var connected = 0
    var delivered = 0
    var duplicates = 0
    var outOfOrder = 0
    var latency = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
    var lastDelivery: Int64 = 0
    /// The id of the newest event delivered on this loop, as text.
    var lastID = ""
}

/// One SSE subscriber, as lean as possible: no parser objects, no per-event strings.
/// It scans bytes for `event: __connected` and for `data: {"seq":N,"t":T` lines.
final class SubscriberHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let request: ByteBuffer
    private let stats: LoopStats
    private let onConnected: () -> Void
    private var headersDone = false
    private var line: [UInt8] = []
    /// The last event id seen, as (milliseconds, sequence): ids increase strictly.
    private var lastID = (-1, -1)
    private var currentID = (-1, -1)

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
        buffer.withUnsafeReadableBytes { bytes in
            for byte in bytes {
                if byte == UInt8(ascii: "\n") {
                    self.endOfLine()
                } else if byte != UInt8(ascii: "\r") {
                    self.line.append(byte)
                }
            }
        }
    }

    private func endOfLine() {
        defer { self.line.removeAll(keepingCapacity: true) }
        if !self.headersDone {
            if self.line.isEmpty { self.headersDone = true }
            return
        }
        if self.line.starts(with: Self.connected) {
            self.stats.connected += 1
            self.onConnected()
            return
        }
        if self.line.starts(with: Self.idPrefix) {
            var index = Self.idPrefix.count
            let milliseconds = self.number(&index)
            index += 1
            self.currentID = (milliseconds, self.number(&index))
            return
        }
        guard self.line.starts(with: Self.dataPrefix) else { return }
        guard var tIndex = self.find(Self.timeKey, from: Self.dataPrefix.count) else { return }
        let sentNanos = self.number(&tIndex)
        let now = LoadClock.nanoseconds()
        self.stats.delivered += 1
        self.stats.progress.store(self.stats.delivered, ordering: .relaxed)
        self.stats.lastDelivery = now
        if self.currentID == self.lastID {
            self.stats.duplicates += 1
        } else if self.currentID < self.lastID {
            self.stats.outOfOrder += 1
        } else {
            self.lastID = self.currentID
            self.stats.lastID = "\(self.currentID.0)-\(self.currentID.1)"
        }
        _ = self.stats.latency.record(UInt64(max(0, now - Int64(sentNanos)) / 1_000))
    }

    private func number(_ index: inout Int) -> Int {
        var value = 0
        while index < self.line.count, self.line[index] >= 48, self.line[index] <= 57 {
            value = value * 10 + Int(self.line[index] - 48)
            index += 1
        }
        return value
    }

    private func find(_ needle: [UInt8], from start: Int) -> Int? {
        guard self.line.count >= needle.count else { return nil }
        var index = start
        while index + needle.count <= self.line.count {
            if self.line[index] == needle[0], Array(self.line[index..<(index + needle.count)]) == needle {
                return index + needle.count
            }
            index += 1
        }
        return nil
    }

    static let connected = Array("event: __connected".utf8)
    static let dataPrefix = Array("data: ".utf8)
    static let idPrefix = Array("id: ".utf8)
    static let timeKey = Array(#""t":"#.utf8)
}

enum LoadClock {
    static func nanoseconds() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }
}
