import Histogram
import NIOCore

/// What the run publishers did, all on the one publishing loop (so unguarded); read by the
/// main task once every publisher's `done` has completed.
final class RunPublishTally: @unchecked Sendable {
    var requests = 0
    /// Events the node accepted (200), and those it refused or never answered.
    var sent = 0
    var failed = 0
    /// How much later than due the latest publish went out, in nanoseconds: a generator
    /// that falls behind its own schedule measures its own lag, not the node.
    var behindMax: Int64 = 0
    var roundTrips = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
}

/// One run's publisher, as a service streaming one model's output: a keep-alive connection
/// of its own that sends the run's tokens at `rate` a second (`perPublish` to a request,
/// as a JSON array when more than one), then one final `complete` event. Each request
/// waits for the answer to the one before (so the run's events stay in order) and goes out
/// at its due time, `start + first token / rate`, or at once when already late. Entirely
/// on its event loop, like ``FlatPublisherHandler``: no task or promise per publish.
final class RunPublisherHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    struct Plan: Sendable {
        var channel: String
        var host: String
        var tokens: Int
        var perPublish: Int
        var rate: Double
        var padding: String
    }

    private let plan: Plan
    private let tally: RunPublishTally
    private let done: EventLoopPromise<Void>
    private var start: Int64 = 0
    /// The first event of the next request (`tokens`: the final event).
    private var next = 0
    private var inFlight = 0
    private var sentAt: Int64 = 0
    private var finished = false
    private var buffer = ByteBuffer()
    private var context: ChannelHandlerContext?

    init(plan: Plan, tally: RunPublishTally, done: EventLoopPromise<Void>) {
        self.plan = plan
        self.tally = tally
        self.done = done
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    /// Starts the run (on its loop): its first token is due at `start` (LoadClock).
    func start(at start: Int64) {
        self.start = start
        self.sendNext()
    }

    private func sendNext() {
        guard let context = self.context, !self.finished else { return }
        guard self.next <= self.plan.tokens else {
            self.finish()
            return
        }
        let due = self.start + Int64(Double(self.next) / self.plan.rate * 1e9)
        let now = LoadClock.nanoseconds()
        if due > now {
            context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(due - now)) { self.sendNext() }
            return
        }
        self.tally.behindMax = max(self.tally.behindMax, now - due)
        let isFinal = self.next == self.plan.tokens
        self.inFlight = isFinal ? 1 : min(self.plan.perPublish, self.plan.tokens - self.next)
        self.sentAt = now
        var request = context.channel.allocator.buffer(capacity: 256 * self.inFlight)
        Self.write(plan: self.plan, first: self.next, count: self.inFlight, sentAt: now, into: &request)
        context.writeAndFlush(NIOAny(request), promise: nil)
        self.tally.requests += 1
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = Self.unwrapInboundIn(data)
        self.buffer.writeBuffer(&incoming)
        while let (status, total) = FlatPublisherHandler.completeResponse(self.buffer) {
            self.buffer.moveReaderIndex(forwardBy: total)
            _ = self.tally.roundTrips.record(UInt64(max(0, LoadClock.nanoseconds() - self.sentAt) / 1_000))
            if status == 200 {
                self.tally.sent += self.inFlight
            } else {
                self.tally.failed += self.inFlight
            }
            self.next += self.inFlight
            self.inFlight = 0
            self.sendNext()
        }
        self.buffer.discardReadBytes()
    }

    func channelInactive(context: ChannelHandlerContext) {
        // Whatever was not answered is lost to the run.
        self.tally.failed += max(0, self.plan.tokens + 1 - self.next)
        self.next = self.plan.tokens + 1
        self.finish()
        self.context = nil
    }

    private func finish() {
        guard !self.finished else { return }
        self.finished = true
        self.done.succeed()
    }

    /// Writes the request that publishes events `first ..< first + count` of the run, each
    /// with `{"seq":N,"t":sentAt,"pad":…}` as its payload: tokens, or (`first == tokens`)
    /// the final `complete` event. Bytes only, as for every publish of a flat-out run.
    static func write(plan: Plan, first: Int, count: Int, sentAt: Int64, into request: inout ByteBuffer) {
        let isFinal = first == plan.tokens
        var body = ByteBuffer()
        body.reserveCapacity(count * (plan.padding.utf8.count + plan.channel.utf8.count + 96))
        if count > 1 { body.writeStaticString("[") }
        for seq in first..<(first + count) {
            if seq > first { body.writeStaticString(",") }
            body.writeStaticString(#"{"channel":""#)
            body.writeString(plan.channel)
            body.writeStaticString(
                isFinal ? #"","event":"complete","payload":{"seq":"# : #"","event":"token","payload":{"seq":"#
            )
            body.writeString(String(seq))
            body.writeStaticString(#","t":"#)
            body.writeString(String(sentAt))
            body.writeStaticString(#","pad":""#)
            body.writeString(plan.padding)
            body.writeStaticString(isFinal ? #""},"final":true}"# : #""}}"#)
        }
        if count > 1 { body.writeStaticString("]") }
        request.writeStaticString("POST /api/sse/notify HTTP/1.1\r\nHost: ")
        request.writeString(plan.host)
        request.writeStaticString("\r\nContent-Type: application/json\r\nContent-Length: ")
        request.writeString(String(body.readableBytes))
        request.writeStaticString("\r\n\r\n")
        request.writeBuffer(&body)
    }
}
