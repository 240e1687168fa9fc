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
    }

    /// The outcome of one live event, on the hot path.
    enum LiveOutcome: Sendable {
        /// Write it, with ``cursor`` as its id.
        case write
        /// Nothing to write now.
        case none
        /// Read history for channel `index` after `after` (a gap).
        case read(index: Int, after: StreamPosition)
    }

    let channels: [String]
    /// Where the client said it was; dropped once the stream is attached.
    private var resume: Resume
    private(set) var phase = Phase.waiting
    /// Per channel: where the stream is (the cursor's position) and how it catches up.
    private var catchUps: [ChannelCatchUp]
    /// Channels waiting their turn to catch up, and the one catching up.
    private var queue: [Int] = []
    private var current: Int?
    private var replayed = 0
    private var capped = Set<Int>()
    let replayCap: Int
    let bufferLimit: Int
    let pageSize: Int

    init(channels: [String], resume: Resume, replayCap: Int, bufferLimit: Int, pageSize: Int) {
        self.channels = channels
        self.resume = resume
        self.replayCap = replayCap
        self.bufferLimit = bufferLimit
        self.pageSize = pageSize
        self.catchUps = Array(
            repeating: ChannelCatchUp(position: .zero, isLive: true, bufferLimit: bufferLimit),
            count: channels.count
        )
    }

    /// The stream's position in channel `index`: what its cursor holds.
    @inline(__always)
    func position(at index: Int) -> StreamPosition {
        self.catchUps[index].position
    }

    var positions: [StreamPosition] { self.catchUps.map(\.position) }

    var cursor: Cursor { Cursor(positions: self.positions) }

    /// Every channel is live: nothing is being caught up.
    var isLive: Bool { self.phase == .active && self.current == nil && self.queue.isEmpty }

    /// The node attached the stream with its position in each channel.
    mutating func attached(_ nodePositions: [StreamPosition]) -> [Output] {
        guard self.phase == .waiting, nodePositions.count == self.channels.count else { return [] }
        self.phase = .active
        var unreadable = false
        for index in self.channels.indices {
            var start = nodePositions[index]
            var isLive = true
            switch self.resume {
            case .cursor(let positions):
                if let position = positions[Cursor.tag(self.channels[index])], position != start {
                    start = position
                    isLive = false
                    self.queue.append(index)
                }
            case .unreadable:
                unreadable = true
            case .none:
                break
            }
            self.catchUps[index] = ChannelCatchUp(position: start, isLive: isLive, bufferLimit: self.bufferLimit)
        }
        self.resume = .none
        var outputs: [Output] = [.connected(self.cursor)]
        if unreadable { outputs.append(.reset(channels: self.channels, .unknown, self.cursor)) }
        self.startNext(&outputs)
        return outputs
    }

    /// A live event of channel `index`.
    mutating func live(_ event: BusEvent, index: Int) -> LiveOutcome {
        guard self.phase == .active else { return .none }
        switch self.catchUps[index].live(event) {
        case .deliver:
            return .write
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
        guard self.phase == .active, self.current == index else { return [] }
        var outputs: [Output] = []
        // The cursor of each output, as it is when that output is written.
        var positions = self.positions
        let step: ChannelCatchUp.Step
        if page.status == .ok, !self.capped.contains(index), self.replayed + page.events.count > self.replayCap {
            // Longer than the replay cap: the client is told, and the channel goes on from
            // the newest position instead of an unbounded read.
            self.capped.insert(index)
            step = self.catchUps[index].jump(to: page.head)
            positions[index] = page.head
            outputs.append(.reset(channels: [self.channels[index]], .capped, Cursor(positions: positions)))
        } else {
            step = self.catchUps[index].read(page, limit: self.pageSize)
            if let reset = step.reset {
                positions[index] = reset.position
                outputs.append(
                    .reset(channels: [self.channels[index]], Self.reason(reset.status), Cursor(positions: positions))
                )
            }
        }
        for event in step.deliver {
            positions[index] = event.position
            self.replayed += 1
            outputs.append(.event(event, Cursor(positions: positions)))
        }
        if let after = step.read {
            outputs.append(.read(index: index, after: after))
        } else if self.catchUps[index].isLive {
            self.current = nil
            self.startNext(&outputs)
        }
        return outputs
    }

    /// The node could not fill a gap in channel `index` and jumped to `position`. A live
    /// channel follows it and says so; one catching up finds the gap in history itself.
    mutating func nodeReset(index: Int, status: HistoryPage.Status, position: StreamPosition) -> [Output] {
        guard self.phase == .active, self.catchUps[index].isLive else { return [] }
        self.catchUps[index] = ChannelCatchUp(position: position, isLive: true, bufferLimit: self.bufferLimit)
        return [.reset(channels: [self.channels[index]], Self.reason(status), self.cursor)]
    }

    mutating func close() {
        self.phase = .closed
    }

    private mutating func startNext(_ outputs: inout [Output]) {
        while self.current == nil, !self.queue.isEmpty {
            let index = self.queue.removeFirst()
            let step = self.catchUps[index].start()
            if let after = step.read {
                self.current = index
                outputs.append(.read(index: index, after: after))
            } else if !self.catchUps[index].isLive {
                // Its read is already asked for (a gap noticed while another channel read).
                self.current = index
                outputs.append(.read(index: index, after: self.catchUps[index].position))
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
