internal import NIOCore

/// The streams of one event loop, by channel. Used only on that loop: no locks on the
/// delivery path.
///
/// A batch of items from ``NodeHub`` is applied in order: each event is queued on every
/// attached stream of its channel (each with its own `id:` line, the same body), and every
/// stream that got something is flushed once at the end. One heartbeat timer serves every
/// stream of the loop.
final class LocalHub {
    let eventLoop: any EventLoop

    /// Attached streams per channel in a dense array (fast to walk); each stream remembers
    /// its slot in every list, so removal is a swap with the last element.
    // Loop-confined and never accessed re-entrantly: no dynamic exclusivity checks.
    @exclusivity(unchecked) private var members: [String: MemberList] = [:]
    /// Every stream of the loop, attached or still waiting.
    private var streams: [StreamID: SSEStreamHandler] = [:]
    @exclusivity(unchecked) private var toFlush: [SSEStreamHandler] = []
    /// The run of one channel's events being delivered.
    @exclusivity(unchecked) private var run = EventRun()
    @exclusivity(unchecked) private var buffers = WriteBufferPool()
    private var heartbeat: Scheduled<Void>?
    private let metrics: NodeMetrics?

    init(eventLoop: any EventLoop, metrics: NodeMetrics? = nil) {
        self.eventLoop = eventLoop
        self.metrics = metrics
    }

    var count: Int { self.streams.count }

    /// Every stream, for draining.
    var allStreams: [SSEStreamHandler] { Array(self.streams.values) }

    /// A new stream, waiting to be attached.
    func add(_ stream: SSEStreamHandler) {
        self.streams[stream.id] = stream
    }

    func remove(_ stream: SSEStreamHandler) {
        guard self.streams.removeValue(forKey: stream.id) != nil, stream.isAttached else { return }
        for (index, channel) in stream.channels.enumerated() {
            guard var list = self.members.removeValue(forKey: channel) else { continue }
            let slot = Int(stream.slots[index])
            guard let last = list.removeLast() else { continue }
            if last.stream !== stream {
                list[slot] = last
                last.stream.slots[last.index] = Int32(slot)
            }
            if !list.isEmpty { self.members[channel] = list }
        }
        stream.isAttached = false
    }

    /// Applies a batch from the node, in order, then flushes each stream once.
    ///
    /// Consecutive events of one channel go to each of its streams together (a stream's
    /// state is loaded once per run, not once per event); each stream still gets every
    /// event in the batch's order, and one write for all of them.
    func apply(_ items: [NodeHub.Item]) {
        let now = WallClock.milliseconds()
        // A stream that gets something in the batch's last run of events gets nothing
        // more from the batch: it is flushed at once, and its buffer, still warm, serves
        // the next stream.
        let lastEvent = items.lastIndex { if case .event = $0 { true } else { false } } ?? items.endIndex
        var position = items.startIndex
        while position < items.endIndex {
            let item = items[position]
            position += 1
            switch item {
            case .event(let first):
                self.run.start(first)
                while position < items.endIndex, case .event(let next) = items[position], self.run.extend(with: next) {
                    position += 1
                }
                guard let list = self.members[first.channel] else { continue }
                for link in self.run.links { self.record(link.position, deliveries: list.count, now: now) }
                let isLast = position > lastEvent
                // The array walked directly (not through the list's subscript, which would
                // look at the case for every stream).
                switch list {
                case .one(let member):
                    self.deliverRun(to: member, isLast: isLast)
                case .many(let members):
                    for member in members { self.deliverRun(to: member, isLast: isLast) }
                }
            case .attach(let id, let positions):
                guard let stream = self.streams[id], !stream.isAttached else { continue }
                for (index, channel) in stream.channels.enumerated() {
                    let member = Member(stream: stream, index: index)
                    if var list = self.members.removeValue(forKey: channel) {
                        stream.slots[index] = Int32(list.count)
                        list.append(member)
                        self.members[channel] = list
                    } else {
                        stream.slots[index] = 0
                        self.members[channel] = .one(member)
                    }
                }
                stream.isAttached = true
                if stream.attached(positions) { self.markForFlush(stream) }
            case .fail(let id):
                self.streams[id]?.close(.unavailable, retryMilliseconds: nil)
            case .reset(let channel, let status, let position, let from):
                for member in self.members[channel] ?? .empty
                where member.stream.nodeReset(index: member.index, status: status, position: position, from: from) {
                    self.markForFlush(member.stream)
                }
            case .disconnect(let channel, let lease, let frame, let tally):
                // What the batch queued before it goes out first, with the frame.
                tally.add(self.disconnect(channel, lease: lease, frame: frame))
            }
        }
        for stream in self.toFlush {
            stream.flushPending(recycling: &self.buffers)
        }
        self.toFlush.removeAll(keepingCapacity: true)
    }

    /// The current run to one stream: flushed at once after the batch's last run,
    /// otherwise at the end of the batch.
    @inline(__always)
    private func deliverRun(to member: Member, isLast: Bool) {
        guard member.stream.enqueue(self.run, index: member.index, buffers: &self.buffers) else { return }
        if isLast {
            member.stream.flushPending(recycling: &self.buffers)
        } else {
            self.markForFlush(member.stream)
        }
    }

    private func markForFlush(_ stream: SSEStreamHandler) {
        guard !stream.needsFlush else { return }
        stream.needsFlush = true
        self.toFlush.append(stream)
    }

    private func record(_ position: StreamPosition, deliveries: Int, now: Int64) {
        guard let metrics = self.metrics, deliveries > 0 else { return }
        metrics.deliveries.increment(by: deliveries)
        metrics.recordLatency(publishedAtMilliseconds: position.milliseconds, now: UInt64(clamping: now))
    }

    /// Ends every stream of `channel` (attached or still waiting) after `frame`; answers
    /// how many it ended.
    func disconnect(_ channel: String, lease: String? = nil, frame: ByteBuffer) -> Int {
        var closed = 0
        for stream in self.streams.values where stream.channels.contains(channel) {
            if let lease, stream.leases?.lease != lease { continue }
            if stream.end(after: frame) { closed += 1 }
        }
        return closed
    }

    /// Starts the loop's heartbeat: every `interval`, `frame` goes to every stream.
    func startHeartbeat(every interval: TimeAmount, frame: ByteBuffer) {
        self.heartbeat = self.eventLoop.assumeIsolated().scheduleTask(in: interval) {
            for stream in self.streams.values { stream.write(frame) }
            self.startHeartbeat(every: interval, frame: frame)
        }
    }

    func stop() {
        self.heartbeat?.cancel()
        self.heartbeat = nil
    }
}

@available(*, unavailable)
extension LocalHub: Sendable {}

extension LocalHub {
    /// An attached stream on a channel, and the channel's place among the stream's channels.
    struct Member {
        let stream: SSEStreamHandler
        let index: Int
    }

    /// A channel's attached streams on one loop: one held inline (a client's own channel has
    /// one stream, and most channels are clients' own), or a dense array (fast to walk).
    enum MemberList: RandomAccessCollection {
        case one(Member)
        case many(ContiguousArray<Member>)

        /// No stream (for walking a channel that has none).
        static var empty: MemberList { .many([]) }

        var startIndex: Int { 0 }

        var endIndex: Int {
            switch self {
            case .one: 1
            case .many(let members): members.count
            }
        }

        subscript(position: Int) -> Member {
            get {
                switch self {
                case .one(let member): member
                case .many(let members): members[position]
                }
            }
            set {
                switch self {
                case .one: self = .one(newValue)
                case .many(var members):
                    self = .empty
                    members[position] = newValue
                    self = .many(members)
                }
            }
        }

        mutating func append(_ member: Member) {
            switch self {
            case .one(let first): self = .many([first, member])
            case .many(var members):
                self = .empty  // so the array is uniquely held and grows in place
                members.append(member)
                self = .many(members)
            }
        }

        /// Removes the last stream and returns it; `nil` (and no change) when there was none.
        /// A list left empty is `empty`.
        mutating func removeLast() -> Member? {
            switch self {
            case .one(let member):
                self = .empty
                return member
            case .many(var members):
                self = .empty
                let last = members.popLast()
                self = members.count == 1 ? .one(members[0]) : .many(members)
                return last
            }
        }
    }
}
