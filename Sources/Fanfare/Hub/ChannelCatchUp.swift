internal import NIOCore

/// Brings one reader of one channel (the node after its subscription dropped, or a stream
/// that resumes) from its position to the live events, with nothing lost, repeated or
/// reordered. A state machine: its methods return what to do, the owner does it.
///
/// The reader is *live* while every event it gets follows on from its position (the
/// event's predecessor is the position). Otherwise it reads history after its position, a
/// page at a time, while the live events that arrive wait in a bounded buffer; once a read
/// reaches the buffer (the first buffered event's predecessor is the position), the buffer
/// is released and the reader is live again. When the buffer is full (in events or in
/// bytes) its oldest events are dropped: they are in history, so the reads go on until
/// they meet the rest.
struct ChannelCatchUp: Sendable {
    /// The position of the last event the reader delivered (or started from).
    private(set) var position: StreamPosition
    /// Live events newer than `position` that cannot be delivered yet, in order.
    private var buffered: [BusEvent] = []
    /// The bodies' bytes in `buffered`.
    private var bufferedBytes = 0
    private let limit: Int32
    private let byteLimit: Int32
    private(set) var isLive: Bool
    /// A read is in flight; its answer is awaited before another is asked for.
    private var reading = false
    /// Events may have been missed since the read in flight was sent: read again after it.
    private var readAgain = false
    /// Reads may begin (a stream catches its channels up one after another; until a
    /// channel's turn its live events only wait).
    private var started: Bool
    /// The newest event buffered when the read in flight was asked for.
    private var bufferedAtRead: StreamPosition?
    /// After the channel's history started over (`gone`): the position the reader had
    /// reached in the old one. Live events at or below it belong to the old history
    /// (delivered already, or lost with it; a new one's positions come later) and are not
    /// delivered, even when they follow on from the reset (every history that starts over
    /// starts from the same `0-0`). Pages of history are the new history's and pass, so a
    /// new event that did come at or below the floor (another server's clock) arrives
    /// through them.
    private(set) var floor: StreamPosition?

    /// Whether a live event at `position` is of a history that started over since.
    @inline(__always)
    private func isBelowFloor(_ position: StreamPosition, after predecessor: StreamPosition) -> Bool {
        guard let floor = self.floor else { return false }
        return position <= floor
    }

    /// How many live events wait at most while history is read.
    var bufferLimit: Int { Int(self.limit) }

    /// How many bytes of live events wait at most while history is read (one event always may).
    var bufferByteLimit: Int { Int(self.byteLimit) }

    /// The live events waiting, and their bodies' bytes.
    var bufferedCount: Int { self.buffered.count }
    var bufferedByteCount: Int { self.bufferedBytes }

    /// A reader at `position`: live, or needing history first. While it reads, at most
    /// `bufferLimit` live events of at most `bufferBytes` bytes wait.
    init(
        position: StreamPosition,
        isLive: Bool,
        bufferLimit: Int,
        bufferBytes: Int = 1 << 20
    ) {
        self.position = position
        self.isLive = isLive
        self.started = isLive
        self.limit = Int32(clamping: max(1, bufferLimit))
        self.byteLimit = Int32(clamping: max(1, bufferBytes))
    }

    /// What to do after a step.
    struct Step: Sendable {
        /// Events to deliver now, in order.
        var deliver: [BusEvent] = []
        /// History could not cover the gap (why, and the channel's newest position, where
        /// the reader jumped to): the events in between are lost to it. Comes before
        /// `deliver`, whose events follow the jump.
        var reset: Reset?
        /// Read history after this position now.
        var read: StreamPosition?
        /// The reader became live with this step.
        var becameLive = false
    }

    struct Reset: Sendable, Equatable {
        var status: HistoryPage.Status
        var position: StreamPosition
        /// Where the reader was before it jumped.
        var from: StreamPosition
    }

    /// The outcome of one live event, on the hot path.
    enum LiveOutcome: Sendable {
        /// Deliver it: it follows on from the position.
        case deliver
        /// Already delivered, or older than where the reader started.
        case drop
        /// Kept until history fills the gap before it.
        case buffered
        /// A gap: kept, and history must be read after this position.
        case read(StreamPosition)
    }

    /// A live event of the channel arrived.
    mutating func live(_ event: BusEvent) -> LiveOutcome {
        if self.advance(to: event.position, after: event.predecessor) { return .deliver }
        guard event.position > self.position, !self.isBelowFloor(event.position, after: event.predecessor) else {
            return .drop
        }
        // Live, this event does not follow on: something in between never arrived.
        self.isLive = false
        self.buffer(event)
        guard self.started, !self.reading else { return .buffered }
        self.startReading()
        return .read(self.position)
    }

    /// The common case of ``live(_:)``, without the event itself: the reader is live and
    /// the event at `position` follows on from its position (its predecessor is `after`).
    /// Then the reader moves to it and the event is to be delivered; otherwise nothing
    /// changes and the event goes through ``live(_:)``.
    @inline(__always)
    mutating func advance(to position: StreamPosition, after predecessor: StreamPosition) -> Bool {
        guard self.isLive, predecessor == self.position, position > self.position else { return false }
        if self.floor != nil {
            guard !self.isBelowFloor(position, after: predecessor) else { return false }
            self.floor = nil
        }
        self.position = position
        return true
    }

    /// Events may have been missed (the subscription dropped and came back): read history.
    mutating func restart() -> Step {
        if self.reading {
            self.readAgain = true
            return Step()
        }
        self.isLive = false
        self.started = true
        self.startReading()
        return Step(read: self.position)
    }

    /// Starts catching up, for a reader made with `isLive: false`.
    mutating func start() -> Step {
        guard !self.isLive, !self.reading else { return Step() }
        self.started = true
        self.startReading()
        return Step(read: self.position)
    }

    /// A read failed; the owner retries it (with the position it returns) when it can.
    mutating func readFailed() -> StreamPosition {
        self.position
    }

    /// The answer to the read in flight: a page that stops before the channel's head
    /// (bounded in events or in bytes) is followed by another read.
    mutating func read(_ page: HistoryPage) -> Step {
        var step = Step()
        self.reading = false
        let bufferedAtRead = self.bufferedAtRead
        self.bufferedAtRead = nil
        let from = self.position
        switch page.status {
        case .ok:
            break
        case .trimmed, .gone:
            // The events in between are lost; what is left goes on from before its first.
            let restart = page.events.first?.predecessor ?? page.head
            step.reset = Reset(status: page.status, position: restart, from: from)
            self.position = restart
            if page.status == .gone { self.floor = max(self.floor ?? from, from) }
            // Kept events up to where the reader was are delivered already (or gone).
            self.dropBuffered { $0.position <= from }
        case .unknown:
            step.reset = Reset(status: page.status, position: page.head, from: from)
            self.position = page.head
        }
        for event in page.events where event.position > self.position {
            step.deliver.append(event)
            self.position = event.position
        }
        if let floor = self.floor, self.position > floor { self.floor = nil }
        if page.status == .ok, page.events.isEmpty, !page.hasMore, !self.readAgain, let bufferedAtRead,
            !self.bufferFollows
        {
            // History ends at the position, and the events kept before this read was asked
            // for do not follow on from it: their predecessors would be in history if they
            // were in this one. They come from a history that is gone (Redis lost it, or
            // the channel expired and started over): drop them, or this would read forever.
            self.dropBuffered { $0.position <= bufferedAtRead }
        }
        if self.readAgain || (page.hasMore && !self.bufferFollows) {
            self.readAgain = false
            self.startReading()
            step.read = self.position
            return step
        }
        self.release(into: &step)
        return step
    }

    /// Jumps to `head` without reading what lies between (the reader was told it misses it).
    mutating func jump(to head: StreamPosition) -> Step {
        var step = Step()
        self.reading = false
        self.readAgain = false
        self.position = head
        self.release(into: &step)
        return step
    }

    /// Whether the live events kept meanwhile go on from the position (so no more history
    /// is needed, even if the last read stopped before the head).
    private var bufferFollows: Bool {
        guard let next = self.buffered.first(where: { $0.position > self.position }) else { return false }
        return next.predecessor == self.position
    }

    /// After history reached `position`: delivers the buffered events that follow on from
    /// it, and goes live once all of them did; else reads on.
    private mutating func release(into step: inout Step) {
        var kept: [BusEvent] = []
        var keptBytes = 0
        var following = true
        for event in self.buffered
        where event.position > self.position && !self.isBelowFloor(event.position, after: event.predecessor) {
            if following, event.predecessor == self.position {
                step.deliver.append(event)
                self.position = event.position
                continue
            }
            following = false
            kept.append(event)
            keptBytes += event.body.readableBytes
        }
        self.buffered = kept
        self.bufferedBytes = keptBytes
        if self.buffered.isEmpty {
            if !self.isLive {
                self.isLive = true
                step.becameLive = true
            }
        } else {
            self.startReading()
            step.read = self.position
        }
    }

    private mutating func dropBuffered(where drop: (BusEvent) -> Bool) {
        self.buffered.removeAll(where: drop)
        self.bufferedBytes = self.buffered.reduce(0) { $0 + $1.body.readableBytes }
    }

    private mutating func startReading() {
        self.reading = true
        self.bufferedAtRead = self.buffered.last?.position
    }

    private mutating func buffer(_ event: BusEvent) {
        let bytes = event.body.readableBytes
        while let oldest = self.buffered.first,
            self.buffered.count >= self.limit || self.bufferedBytes + bytes > self.byteLimit
        {
            self.bufferedBytes -= oldest.body.readableBytes
            self.buffered.removeFirst()
        }
        self.buffered.append(event)
        self.bufferedBytes += bytes
    }
}
