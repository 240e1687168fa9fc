internal import FanfareAPI
internal import Logging
internal import NIOCore

/// One SSE stream: the connection's handler once the HTTP handler admitted the stream and
/// wrote the response head (it replaces the HTTP codec and handler in the pipeline).
///
/// Loop-confined. It performs its ``StreamStateMachine``'s outputs: events and control
/// frames go into one pending buffer per batch, each event with the stream's own cursor as
/// its `id:` line before the shared body; the hub flushes it once per batch. A history
/// read starts only once what came before it was written to the socket, so a resume never
/// queues more than a page. Bytes the client sends are read and dropped.
final class SSEStreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    let node: NodeContext
    /// The stream's identity in the hub (never an address, which is reused).
    let id: StreamID
    let clientID: String
    let eventLoop: any EventLoop
    // Loop-confined and never accessed re-entrantly: the dynamic exclusivity checks, which
    // cost more than what they guard on the delivery path, are off for the stored
    // properties the delivery path touches.
    @exclusivity(unchecked) private var machine: StreamStateMachine
    @exclusivity(unchecked) private var context: ChannelHandlerContext?
    /// The address the stream counts against under the connection limits (with its
    /// client id), given back when it closes.
    private let address: String
    /// Its place under its user's limit and on its topics' presence, if it has them.
    let leases: StreamLeases?
    @exclusivity(unchecked) var isAttached = false
    /// Set while the stream is on its hub's list of streams to flush after a batch.
    @exclusivity(unchecked) var needsFlush = false
    @exclusivity(unchecked) private var pending: ByteBuffer?
    /// The pending bytes hold history (a page, or the last page before going live).
    @exclusivity(unchecked) private var pendingHoldsHistory = false
    /// Bytes of history written but not yet on the socket: a stream may hold that much
    /// more than the slow-consumer bound (one page, since the next is read only once
    /// these are on the socket).
    @exclusivity(unchecked) private var historyBytesInFlight = 0
    /// A history read to start once the pending bytes are written.
    @exclusivity(unchecked) private var readAfterFlush: (index: Int, after: StreamPosition)?
    @exclusivity(unchecked) private var closed = false
    /// A run stream put its final event and `__end` in the pending bytes: it closes once
    /// they are written, and writes nothing after them (`ended`).
    private var endsAfterFlush = false
    /// The stream's last bytes are written (a run's end, a disconnect, a close): it writes
    /// nothing more, takes no events, and closes once they are on the socket.
    private var ended = false
    /// Closes an ended stream whose client does not read its last bytes.
    private var endTimer: Scheduled<Void>?
    /// A run stream: it ends after its channel's final event.
    private let endsAtFinal: Bool
    /// When the stream's token stops being accepted, and the timer that ends it then.
    private let expires: NIODeadline?
    private var expiryTimer: Scheduled<Void>?

    init(
        node: NodeContext,
        clientID: String,
        channels: [String],
        resume: StreamStateMachine.Resume,
        address: String,
        leases: StreamLeases? = nil,
        expires: NIODeadline? = nil,
        endsAtFinal: Bool = false,
        eventLoop: any EventLoop
    ) {
        self.node = node
        self.endsAtFinal = endsAtFinal
        self.clientID = clientID
        self.eventLoop = eventLoop
        self.id = node.hub.makeStreamID(on: eventLoop)
        self.address = address
        self.leases = leases
        self.expires = expires
        let configuration = node.configuration
        self.machine = StreamStateMachine(
            channels: channels,
            resume: resume,
            replayCap: configuration.replayCap,
            bufferLimit: configuration.liveBufferEvents,
            bufferBytes: configuration.slowConsumerBytes,
            endsAtFinal: endsAtFinal
        )
    }

    /// The stream's channels, in its order (the cursor's too).
    var channels: [String] { self.machine.channels }

    /// The stream's place in its loop hub's list of the streams of channel `index`.
    var slots: Slots { Slots(stream: self) }

    struct Slots {
        let stream: SSEStreamHandler

        subscript(index: Int) -> Int32 {
            get { self.stream.machine.lanes[index].slot }
            nonmutating set { self.stream.machine.setSlot(newValue, at: index) }
        }
    }

    // MARK: The channel

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.node.hub.register(self)
        if let leases = self.leases { self.node.leases.opened(leases) }
        if let expires = self.expires {
            self.expiryTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: expires) {
                self.expiryTimer = nil
                self.node.logger.debug("sse.token.expired", metadata: ["client.id": "\(self.clientID)"])
                self.close(.tokenExpired, retryMilliseconds: nil)
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func channelInactive(context: ChannelHandlerContext) {
        self.finish()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.finish()
        self.context = nil
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.closeIfSlow(context: context)
        context.fireChannelWritabilityChanged()
    }

    /// More unsent bytes than the bound, plus the page of history being written if there
    /// is one: a slow consumer, in every state (catching up included). Closing it protects
    /// the node; it resumes by Last-Event-ID. A catch-up that waits for its socket is not
    /// slow for its own page: the next page is read only once it is written.
    private func closeIfSlow(context: ChannelHandlerContext) {
        guard !context.channel.isWritable, !self.closed, context.channel.isActive else { return }
        // Past the high water mark (the bound); while a page of history is on its way,
        // slow only past that page as well.
        let unsent = (try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
        if self.historyBytesInFlight > 0,
            unsent <= self.node.configuration.slowConsumerBytes + self.historyBytesInFlight
        {
            return
        }
        self.node.metrics.slowConsumerCloses.increment()
        self.node.logger.info(
            "sse.slow_consumer.closed",
            metadata: ["client.id": "\(self.clientID)", "unsent": "\(unsent)"]
        )
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func finish() {
        guard !self.closed else { return }
        self.closed = true
        self.expiryTimer?.cancel()
        self.expiryTimer = nil
        self.endTimer?.cancel()
        self.endTimer = nil
        self.machine.close()
        self.node.hub.unregister(self)
        self.node.connectionLimiter.release(clientID: self.clientID, address: self.address)
        if let leases = self.leases { self.node.leases.closed(leases) }
    }

    // MARK: From the hub (on this loop)

    /// Attached with the node's positions; returns whether something waits to be flushed.
    func attached(_ positions: [StreamPosition]) -> Bool {
        self.perform(self.machine.attached(positions))
    }

    /// A run of live events of channel `index`; returns whether something waits to be
    /// flushed.
    ///
    /// The hot path: while the stream is live on the channel and each event follows on,
    /// its id line and body go into the pending buffer in one pass over the run's plain
    /// memory. The first event that does not (a gap, a duplicate, a catch-up) and those
    /// after it go through the state machine one by one, and so do all of a run stream's
    /// (any may be its final one).
    @inline(__always)
    func enqueue(_ run: EventRun, index: Int, buffers: inout WriteBufferPool) -> Bool {
        let idLine = Cursor.maximumLength(channels: self.machine.lanes.count, line: true)
        var buffer = self.pending.take() ?? buffers.take(capacity: run.bodyBytes + run.count * idLine)
        var delivered = 0
        if !self.endsAtFinal {
            run.bodies.withUnsafeReadableBytes { bodies in
                let base = bodies.baseAddress
                buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: run.bodyBytes + run.count * idLine) { out in
                    guard let out = out.baseAddress, let base else { return 0 }
                    var written = 0
                    for link in run.links {
                        guard self.machine.advance(index: index, to: link.position, after: link.predecessor) else {
                            break
                        }
                        written += self.machine.lanes.withUnsafeBufferPointer { lanes in
                            Cursor.write(count: lanes.count, to: out + written, line: true) {
                                (lanes[$0].tag, lanes[$0].position)
                            }
                        }
                        (out + written).copyMemory(from: base + Int(link.start), byteCount: Int(link.length))
                        written += Int(link.length)
                        delivered += 1
                    }
                    return written
                }
            }
        }
        self.pending = consume buffer
        var waiting = delivered > 0
        if delivered < run.count {
            for event in run.events[delivered...] {
                switch self.machine.live(event, index: index) {
                case .write:
                    self.appendEvent(event)
                    waiting = true
                case .end:
                    self.appendEvent(event)
                    self.appendEnd(channel: event.channel)
                    waiting = true
                case .none:
                    continue
                case .read(let index, let after):
                    self.readAfterFlush = (index, after)
                    waiting = true
                }
            }
        }
        if var unused = self.pending, unused.readableBytes == 0 {
            // Nothing written after all: the buffer goes back.
            self.pending = nil
            buffers.recycle(&unused)
        }
        return waiting
    }

    /// The node jumped channel `index` from `from` to `position` over a gap it could not fill.
    func nodeReset(index: Int, status: HistoryPage.Status, position: StreamPosition, from: StreamPosition) -> Bool {
        self.perform(self.machine.nodeReset(index: index, status: status, position: position, from: from))
    }

    /// Writes the pending bytes; a read waiting for them starts once they are written.
    /// The buffer goes back to `buffers` when the socket took all of it at once.
    func flushPending(recycling buffers: inout WriteBufferPool) {
        self.needsFlush = false
        guard let context = self.context, !self.closed, !self.ended else { return }
        let read = self.readAfterFlush
        self.readAfterFlush = nil
        if self.endsAfterFlush {
            // A run's final event and `__end`: the response ends once they are written.
            self.endsAfterFlush = false
            let bytes = self.pending ?? ByteBuffer()
            self.pending = nil
            self.end(writing: bytes, context: context)
            return
        }
        guard var pending = self.pending else {
            if let read { self.startRead(read) }
            return
        }
        self.pending = nil
        let history = self.pendingHoldsHistory
        self.pendingHoldsHistory = false
        guard read != nil || history else {
            context.writeAndFlush(NIOAny(pending), promise: nil)
            buffers.recycle(&pending)
            // Past the high water mark with no history on its way, the writability change
            // closed it already; with history on its way, each write is measured (the hot
            // path of a live stream checks nothing more).
            if self.historyBytesInFlight > 0, !context.channel.isWritable { self.closeIfSlow(context: context) }
            return
        }
        let historyBytes = history ? pending.readableBytes : 0
        self.historyBytesInFlight += historyBytes
        context.writeAndFlush(NIOAny(pending)).assumeIsolated().whenComplete { result in
            self.historyBytesInFlight -= historyBytes
            // Its page is on the socket: what is still unsent is live, and may be too much.
            self.closeIfSlow(context: context)
            if case .success = result, let read { self.startRead(read) }
        }
        if !context.channel.isWritable { self.closeIfSlow(context: context) }
    }

    /// Writes the pending bytes (outside a batch: nothing to give the buffer back to).
    private func flushPending() {
        var none = WriteBufferPool(limit: 0)
        self.flushPending(recycling: &none)
    }

    /// A heartbeat (or any frame of its own) now.
    func write(_ frame: ByteBuffer) {
        guard let context = self.context, !self.closed, !self.ended else { return }
        context.writeAndFlush(NIOAny(frame), promise: nil)
    }

    /// Writes what is pending and `frame` (a `__disconnect`), then closes the stream; writes
    /// nothing after. Returns whether the stream was open.
    func end(after frame: ByteBuffer) -> Bool {
        guard let context = self.context, !self.closed, !self.ended else { return false }
        self.endsAfterFlush = false
        self.readAfterFlush = nil
        var bytes = self.pending ?? ByteBufferAllocator().buffer(capacity: frame.readableBytes)
        self.pending = nil
        bytes.writeImmutableBuffer(frame)
        self.end(writing: bytes, context: context)
        return true
    }

    /// Tells the client when to come back (`retry:`) and why, and closes the stream.
    func close(_ reason: ControlFrame.CloseReason, retryMilliseconds: Int?) {
        guard let context = self.context, !self.closed, !self.ended else { return }
        let retry = retryMilliseconds ?? self.node.configuration.retryMilliseconds
        self.end(writing: ControlFrame.close(reason, retryMilliseconds: retry), context: context)
    }

    /// How long an ended stream waits for its client to read its last bytes.
    static let endTimeout = TimeAmount.seconds(5)

    /// Writes the stream's last bytes and closes it once they are on the socket, or after
    /// ``endTimeout`` when the client does not read them; from now on it takes no events
    /// and writes nothing more (events still on their way are dropped, not queued).
    private func end(writing bytes: ByteBuffer, context: ChannelHandlerContext) {
        self.ended = true
        self.machine.close()
        self.pending = nil
        context.writeAndFlush(NIOAny(bytes)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        self.endTimer = context.eventLoop.assumeIsolated().scheduleTask(in: Self.endTimeout) {
            context.close(promise: nil)
        }
    }

    // MARK: Outputs

    /// Returns whether something waits to be flushed.
    private func perform(_ outputs: [StreamStateMachine.Output]) -> Bool {
        var waiting = false
        for output in outputs {
            switch output {
            case .connected(let cursor):
                let connected = ConnectedEvent(
                    clientId: self.clientID,
                    nodeId: self.node.identity.id,
                    channels: self.channels,
                    time: WallClock.milliseconds()
                )
                self.appendFrame(ControlFrame.connected(connected, id: self.text(cursor)))
            case .event(let event, let cursor):
                self.appendEvent(event, cursor: cursor)
                self.pendingHoldsHistory = true
                self.node.metrics.eventsReplayed.increment()
            case .reset(let channels, let reason, let cursor):
                self.node.metrics.resetsSent.increment()
                let reset = ResetEvent(channels: channels, reason: reason)
                self.appendFrame(ControlFrame.reset(reset, id: self.text(cursor)))
            case .read(let index, let after):
                self.readAfterFlush = (index, after)
            case .end(let channel):
                self.appendEnd(channel: channel)
            }
            waiting = true
        }
        return waiting
    }

    private func startRead(_ read: (index: Int, after: StreamPosition)) {
        guard let context = self.context, !self.closed else { return }
        let bus = self.node.bus
        let channel = self.channels[read.index]
        let limit = self.node.configuration.historyPageSize
        // A page is at most a quarter of the slow-consumer bound: a stream catching up
        // holds at most the bound and that page.
        let maxBytes = min(
            self.node.configuration.historyPageBytes,
            max(1, self.node.configuration.slowConsumerBytes / 4)
        )
        let executor = self.node.taskExecutors.executor(for: context.eventLoop)
        let loop = context.eventLoop
        let promise = loop.makePromise(of: HistoryPage.self)
        // From the loop into the bus's async read: the task is the bridge; it runs on this loop.
        Task(executorPreference: executor) {
            do {
                promise.succeed(
                    try await bus.read(channel, after: read.after, limit: limit, maxBytes: maxBytes, on: loop)
                )
            } catch {
                promise.fail(error)
            }
        }
        promise.futureResult.assumeIsolated().whenComplete { result in
            guard !self.closed else { return }
            switch result {
            case .success(let page):
                if self.perform(self.machine.read(page, index: read.index)) { self.flushPending() }
            case .failure(let error):
                self.node.logger.warning("sse.replay.failed", metadata: ["error": "\(error)"])
                self.close(.unavailable, retryMilliseconds: nil)
            }
        }
    }

    private func text(_ cursor: Cursor) -> String {
        cursor.text(tags: self.machine.lanes.map(\.tag))
    }

    /// The hot path: the stream's own `id:` line, then the shared body.
    @inline(__always)
    private func appendEvent(_ event: BusEvent) {
        var buffer = self.pending.take() ?? ByteBufferAllocator().buffer(capacity: event.body.readableBytes + 128)
        self.machine.lanes.withUnsafeBufferPointer { lanes in
            Cursor.write(count: lanes.count, into: &buffer, line: true) { (lanes[$0].tag, lanes[$0].position) }
        }
        buffer.writeImmutableBuffer(event.body)
        self.pending = consume buffer
    }

    /// A replayed event, with the cursor as it was when the machine replayed it.
    private func appendEvent(_ event: BusEvent, cursor: Cursor) {
        var buffer = self.pending.take() ?? ByteBufferAllocator().buffer(capacity: event.body.readableBytes + 128)
        buffer.writeStaticString("id: ")
        let positions = cursor.positions
        self.machine.lanes.withUnsafeBufferPointer { lanes in
            Cursor.write(count: lanes.count, into: &buffer) { (lanes[$0].tag, positions[$0]) }
        }
        buffer.writeInteger(UInt8(ascii: "\n"))
        buffer.writeImmutableBuffer(event.body)
        self.pending = consume buffer
    }

    /// `__end` after a run's final event; the stream closes once it is written.
    private func appendEnd(channel: String) {
        self.appendFrame(ControlFrame.end(EndEvent(channel: channel)))
        self.endsAfterFlush = true
    }

    private func appendFrame(_ frame: ByteBuffer) {
        var buffer = self.pending.take() ?? ByteBufferAllocator().buffer(capacity: frame.readableBytes + 64)
        buffer.writeImmutableBuffer(frame)
        self.pending = consume buffer
    }
}

@available(*, unavailable)
extension SSEStreamHandler: Sendable {}
