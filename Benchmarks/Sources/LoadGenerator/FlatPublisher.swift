import Histogram
import NIOCore
import NIOPosix
import Synchronization

/// A publisher lane for flat-out runs, entirely on its event loop: it sends a request,
/// reads the answer and sends the next at once, with no task, promise or string per
/// publish (the generator shares the cores with the servers it measures, so what it
/// spends they lose). Flow control: it waits, polling every 200 µs, while it is more than
/// `window` events ahead of the deliveries counted so far.
final class FlatPublisherHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    /// What one lane did.
    struct Outcome: Sendable {
        var sent = 0
        var failed = 0
        var roundTrips = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
    }

    /// Makes the request that carries events `first ..< first + count`, sent at `now`.
    typealias MakeRequest = (_ first: Int, _ count: Int, _ now: Int64, _ into: inout ByteBuffer) -> Void

    private let lane: Int
    private let lanes: Int
    private let batch: Int
    private let events: Int
    private let stopAt: Int64
    private let window: Int
    private let perEvent: Int
    private let stats: [LoopStats]
    private let isPublished: (Int) -> Bool
    private let make: MakeRequest
    private let done: EventLoopPromise<Outcome>
    private var request: Int
    private var sentAt: Int64 = 0
    private var inFlight = 0
    private var buffer = ByteBuffer()
    private var outcome = Outcome()
    private var context: ChannelHandlerContext?

    init(
        lane: Int,
        lanes: Int,
        batch: Int,
        events: Int,
        stopAt: Int64,
        window: Int,
        perEvent: Int,
        stats: [LoopStats],
        isPublished: @escaping (Int) -> Bool,
        make: @escaping MakeRequest,
        done: EventLoopPromise<Outcome>
    ) {
        self.lane = lane
        self.lanes = lanes
        self.batch = batch
        self.events = events
        self.stopAt = stopAt
        self.window = window
        self.perEvent = perEvent
        self.stats = stats
        self.isPublished = isPublished
        self.make = make
        self.done = done
        self.request = lane
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    /// Starts the lane (on its loop).
    func start() {
        self.sendNext()
    }

    private func sendNext() {
        guard let context = self.context else { return }
        let first = self.request * self.batch
        let now = LoadClock.nanoseconds()
        guard first < self.events, now < self.stopAt else {
            self.done.succeed(self.outcome)
            return
        }
        let delivered = self.stats.reduce(0) { $0 + $1.progress.load(ordering: .relaxed) }
        if delivered < (first - self.window) * self.perEvent {
            context.eventLoop.assumeIsolated().scheduleTask(in: .microseconds(200)) { self.sendNext() }
            return
        }
        self.inFlight = min(self.batch, self.events - first)
        self.sentAt = now
        var request = context.channel.allocator.buffer(capacity: 256 * self.inFlight)
        self.make(first, self.inFlight, now, &request)
        context.writeAndFlush(NIOAny(request), promise: nil)
        self.request += self.lanes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = Self.unwrapInboundIn(data)
        self.buffer.writeBuffer(&incoming)
        while let (status, total) = Self.completeResponse(self.buffer) {
            self.buffer.moveReaderIndex(forwardBy: total)
            let roundTrip = UInt64(max(0, LoadClock.nanoseconds() - self.sentAt) / 1_000)
            _ = self.outcome.roundTrips.record(roundTrip)
            if self.isPublished(status) {
                self.outcome.sent += self.inFlight
            } else {
                self.outcome.failed += self.inFlight
            }
            self.sendNext()
        }
        self.buffer.discardReadBytes()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.done.succeed(self.outcome)
        self.context = nil
    }

    /// The status and total size of the first response in `buffer`, once all of it is
    /// there: the head's end, the status digits and Content-Length, read as bytes.
    static func completeResponse(_ buffer: ByteBuffer) -> (status: Int, total: Int)? {
        buffer.withUnsafeReadableBytes { bytes -> (Int, Int)? in
            let count = bytes.count
            guard count >= 16 else { return nil }
            var end = -1
            var index = 0
            while index + 3 < count {
                if bytes[index] == 13, bytes[index + 1] == 10, bytes[index + 2] == 13, bytes[index + 3] == 10 {
                    end = index
                    break
                }
                index += 1
            }
            guard end > 12 else { return nil }
            // "HTTP/1.1 200 ..."
            let status = Int(bytes[9] &- 48) * 100 + Int(bytes[10] &- 48) * 10 + Int(bytes[11] &- 48)
            var length = 0
            let name = Array("content-length:".utf8)
            var line = 0
            while line < end {
                // At the start of a line: does it name Content-Length?
                if line + name.count <= end {
                    var matches = true
                    for offset in 0..<name.count where bytes[line + offset] | 0x20 != name[offset] | 0x20 {
                        matches = false
                        break
                    }
                    if matches {
                        var digit = line + name.count
                        while digit < end, bytes[digit] == 32 { digit += 1 }
                        while digit < end, bytes[digit] >= 48, bytes[digit] <= 57 {
                            length = length * 10 + Int(bytes[digit] - 48)
                            digit += 1
                        }
                    }
                }
                while line < end, bytes[line] != 10 { line += 1 }
                line += 1
            }
            let total = end + 4 + length
            return count >= total ? (status, total) : nil
        }
    }
}
