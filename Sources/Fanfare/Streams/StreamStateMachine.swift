internal import FanfareAPI

/// One SSE stream's logic, without I/O: waiting to be attached, catching up what a
/// resuming client missed, live, closed. Its methods return what to write and read;
/// ``SSEStreamHandler`` does it.
///
/// The stream's cursor holds its position in every channel. A fresh stream starts at the
/// node's positions. A resuming stream starts at the client's (from its Last-Event-ID):
/// each channel behind the node catches up from history, one channel at a time and a page
/// at a time, the next page read only once the last one was written to the socket, while
/// live events wait in a bounded buffer (``ChannelCatchUp``). A channel history cannot
/// cover gets `__reset` naming it, and so does one whose catching up would pass the replay
/// cap; the other channels resume exactly.
///
/// A run stream (``endsAtFinal``) ends after its channel's final event, however it came
/// (live or from history): ``Output/end(channel:)`` follows that event, and the stream writes
/// nothing more. A run replays its whole retained history (bounded by the history size), not
/// up to the replay cap: jumping to the head could pass over the final event, and the stream
/// would never end.
struct StreamStateMachine: Sendable {
    /// Where the client said it was.
    enum Resume: Sendable, Equatable {
        /// No Last-Event-ID: a new stream.
        case none
        /// A cursor of this format: positions by channel tag.
        case cursor([UInt32: StreamPosition])
        /// A Last-Event-ID that is not a cursor (damaged, another version, or an id of the
        /// earlier `<ms>-<seq>` kind): the stream starts fresh and says so with one `__reset`.
        case unreadable(String)
    }

    enum Phase: Sendable, Equatable {
        case waiting
        case active
        case closed
    }

    /// Something to write, in order, or a read to make once it is written.
    enum Output: Sendable {
        case connected(Cursor)
        case event(BusEvent, Cursor)
        case reset(channels: [String], ResetEvent.Reason, Cursor)
        /// Read up to `limit` events of channel `index` after `after`, once everything
        /// before this was written to the socket.
        case read(index: Int, after: StreamPosition)
        /// The run's final event was the one before: end the stream once it is written.
        case end(channel: String)
    }

    /// The outcome of one live event, on the hot path.
    enum LiveOutcome: Sendable {
        /// Write it, with ``cursor`` as its id.
        case write
        /// Write it, then end the stream: it is the run's final event.
        case end
        /// Nothing to write now.
        case none
        /// Read history for channel `index` after `after` (a gap).
        case read(index: Int, after: StreamPosition)
    }

    /// Per channel (in the stream's channel order): its tag in the cursor and the stream's
    /// position there, side by side for the cursor written with every event.
    struct Lane: Sendable {
        let tag: UInt32
        /// The owner's bookkeeping for the channel (a ``LocalHub`` keeps the stream's place
        /// in its list of the channel's streams here); the machine never reads it.
        var slot: Int32 = -1
        var position: StreamPosition
    }

    let channels: [String]
    private(set) var lanes: [Lane]
    /// Where the client said it was; dropped once the stream is attached.
    private var resume: Resume
    private(set) var phase = Phase.waiting
    /// The channels that are not live (catching up, or waiting their turn to): how each
    /// catches up. A live channel has none; its lane's position is all it needs.
    private var catchUps: [Int: ChannelCatchUp] = [:]
    /// Channels waiting their turn to catch up, and the one catching up.
    private var queue: [Int] = []
    private var current: Int?
    private var replayed = 0
    private var capped = Set<Int>()
    private let limits: (replayCap: Int32, bufferLimit: Int32, bufferBytes: Int32)
    /// A run stream: it ends after a final event.
    let endsAtFinal: Bool

    var replayCap: Int { Int(self.limits.replayCap) }
    var bufferLimit: Int { Int(self.limits.bufferLimit) }
    var bufferBytes: Int { Int(self.limits.bufferBytes) }

    /// `bufferLimit` events of at most `bufferBytes` bytes wait per channel while it
    /// catches up (older ones are read from history again).
    init(
        channels: [String],
        resume: Resume,
        replayCap: Int,
        bufferLimit: Int,
        bufferBytes: Int = 1 << 20,
        endsAtFinal: Bool = false
    ) {
        self.channels = channels
        self.resume = resume
        self.endsAtFinal = endsAtFinal
        self.limits = (
            Int32(clamping: replayCap), Int32(clamping: bufferLimit), Int32(clamping: bufferBytes)
        )
        self.lanes = channels.map { Lane(tag: Cursor.tag($0), position: .zero) }
    }

    /// The stream's position in channel `index`: what its cursor holds.
    @inline(__always)
    func position(at index: Int) -> StreamPosition {
        self.lanes[index].position
    }

    var positions: [StreamPosition] { self.lanes.map(\.position) }

    var cursor: Cursor { Cursor(positions: self.positions) }

    /// Live events waiting while their channels catch up (each channel's at most
    /// ``bufferLimit`` events of at most ``bufferBytes`` bytes).
    var bufferedEventCount: Int { self.catchUps.values.reduce(0) { $0 + $1.bufferedCount } }

    /// Every channel is live: nothing is being caught up.
    var isLive: Bool { self.phase == .active && self.current == nil && self.queue.isEmpty }

    /// Sets the owner's bookkeeping for channel `index` (see ``Lane/slot``).
    mutating func setSlot(_ slot: Int32, at index: Int) {
        self.lanes[index].slot = slot
    }

    /// The node attached the stream with its position in each channel.
    mutating func attached(_ nodePositions: [StreamPosition]) -> [Output] {
        guard self.phase == .waiting, nodePositions.count == self.channels.count else { return [] }
        self.phase = .active
        var unreadable = false
        for index in self.channels.indices {
            self.lanes[index].position = nodePositions[index]
            switch self.resume {
            case .cursor(let positions):
                if let position = positions[self.lanes[index].tag], position != nodePositions[index] {
                    self.store(
                        ChannelCatchUp(
                            position: position,
                            isLive: false,
                            bufferLimit: self.bufferLimit,
                            bufferBytes: self.bufferBytes
                        ),
                        at: index
                    )
                    self.queue.append(index)
                }
            case .unreadable:
                unreadable = true
            case .none:
                break
            }
        }
        self.resume = .none
        var outputs: [Output] = [.connected(self.cursor)]
        if unreadable { outputs.append(.reset(channels: self.channels, .unknown, self.cursor)) }
        self.startNext(&outputs)
        return outputs
    }

    /// The hot path of ``live(_:index:)``: whether the event of channel `index` at
    /// `position` (after `predecessor`) is to be written now, the stream moving to it. When
    /// not, nothing changed: the event goes through ``live(_:index:)``.
    @inline(__always)
    mutating func advance(index: Int, to position: StreamPosition, after predecessor: StreamPosition) -> Bool {
        guard self.phase == .active, self.catchUps.isEmpty || self.catchUps[index] == nil else { return false }
        let current = self.lanes[index].position
        guard predecessor == current, position > current else { return false }
        self.lanes[index].position = position
        return true
    }

    /// A live event of channel `index`.
    mutating func live(_ event: BusEvent, index: Int) -> LiveOutcome {
        if self.advance(index: index, to: event.position, after: event.predecessor) {
            return self.ends(after: event) ? .end : .write
        }
        guard self.phase == .active else { return .none }
        // Not simply live: the channel's catch-up decides (a live channel that meets a gap
        // starts one, from where it is).
        var catchUp =
            self.catchUps[index]
            ?? ChannelCatchUp(
                position: self.lanes[index].position,
                isLive: true,
                bufferLimit: self.bufferLimit,
                bufferBytes: self.bufferBytes
            )
        let outcome = catchUp.live(event)
        self.store(catchUp, at: index)
        switch outcome {
        case .deliver:
            return self.ends(after: event) ? .end : .write
        case .drop, .buffered:
            return .none
        case .read(let after):
            // A gap in a live channel: it catches up like a resuming one, in its turn.
            if self.current == nil {
                self.current = index
                return .read(index: index, after: after)
            }
            self.queue.append(index)
            return .none
        }
    }

    /// The read of channel `index` answered.
    mutating func read(_ page: HistoryPage, index: Int) -> [Output] {
        guard self.phase == .active, self.current == index, var catchUp = self.catchUps[index] else { return [] }
        var outputs: [Output] = []
        // The cursor of each output, as it is when that output is written.
        var positions = self.positions
        let step: ChannelCatchUp.Step
        if page.status == .ok, !self.endsAtFinal, !self.capped.contains(index),
            self.replayed + page.events.count > self.replayCap
        {
            // Longer than the replay cap: the client is told, and the channel goes on from
            // the newest position instead of an unbounded read.
            self.capped.insert(index)
            step = catchUp.jump(to: page.head)
            positions[index] = page.head
            outputs.append(.reset(channels: [self.channels[index]], .capped, Cursor(positions: positions)))
        } else {
            step = catchUp.read(page)
            if let reset = step.reset {
                positions[index] = reset.position
                outputs.append(
                    .reset(channels: [self.channels[index]], Self.reason(reset.status), Cursor(positions: positions))
                )
            }
        }
        self.store(catchUp, at: index)
        for event in step.deliver {
            positions[index] = event.position
            self.replayed += 1
            outputs.append(.event(event, Cursor(positions: positions)))
            if self.ends(after: event) {
                outputs.append(.end(channel: self.channels[index]))
                return outputs
            }
        }
        if let after = step.read {
            outputs.append(.read(index: index, after: after))
        } else if catchUp.isLive {
            self.current = nil
            self.startNext(&outputs)
        }
        return outputs
    }

    /// Keeps channel `index`'s catch-up and its position in the lane. A live channel has
    /// none, unless its history started over while it caught up: then the catch-up stays
    /// (live) until an event passes its floor (``ChannelCatchUp/floor``), so the channel's
    /// events take the slow path meanwhile and the fast one checks nothing more.
    private mutating func store(_ catchUp: ChannelCatchUp, at index: Int) {
        self.lanes[index].position = catchUp.position
        self.catchUps[index] = catchUp.isLive && catchUp.floor == nil ? nil : catchUp
    }

    /// The node could not fill a gap in channel `index` after `from` and jumped to
    /// `position`. A live channel that was where the node was follows it and says so. One
    /// that is elsewhere (it resumed from a cursor the node had not reached) checks its own
    /// position against history instead: a jump could move it backwards, or over events
    /// it has not had. One catching up (or whose history started over, with a floor to keep)
    /// finds any gap in history itself.
    mutating func nodeReset(
        index: Int,
        status: HistoryPage.Status,
        position: StreamPosition,
        from: StreamPosition
    ) -> [Output] {
        guard self.phase == .active, self.catchUps[index] == nil else { return [] }
        let lane = self.lanes[index].position
        if lane == from {
            self.lanes[index].position = position
            return [.reset(channels: [self.channels[index]], Self.reason(status), self.cursor)]
        }
        if lane == position { return [] }
        self.store(
            ChannelCatchUp(
                position: lane,
                isLive: false,
                bufferLimit: self.bufferLimit,
                bufferBytes: self.bufferBytes
            ),
            at: index
        )
        self.queue.append(index)
        var outputs: [Output] = []
        self.startNext(&outputs)
        return outputs
    }

    mutating func close() {
        self.phase = .closed
    }

    /// Whether `event`, just written, ends the stream (a run's final event); if so, the
    /// stream is closed to anything after it.
    private mutating func ends(after event: BusEvent) -> Bool {
        guard self.endsAtFinal, event.isFinal else { return false }
        self.phase = .closed
        return true
    }

    private mutating func startNext(_ outputs: inout [Output]) {
        while self.current == nil, !self.queue.isEmpty {
            let index = self.queue.removeFirst()
            guard var catchUp = self.catchUps[index] else { continue }
            let step = catchUp.start()
            self.store(catchUp, at: index)
            if let after = step.read {
                self.current = index
                outputs.append(.read(index: index, after: after))
            } else if !catchUp.isLive {
                // Its read is already asked for (a gap noticed while another channel read).
                self.current = index
                outputs.append(.read(index: index, after: catchUp.position))
            }
        }
    }

    static func reason(_ status: HistoryPage.Status) -> ResetEvent.Reason {
        switch status {
        case .trimmed: .trimmed
        case .gone: .gone
        case .unknown, .ok: .unknown
        }
    }
}
