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

    /// An attached stream on a channel, and the channel's place among the stream's channels.
    private struct Member {
        let stream: SSEStreamHandler
        let index: Int
    }

    /// Attached streams per channel in a dense array (fast to walk); each stream remembers
    /// its slot in every list, so removal is a swap with the last element.
    // Loop-confined and never accessed re-entrantly: no dynamic exclusivity checks.
    @exclusivity(unchecked) private var members: [String: ContiguousArray<Member>] = [:]
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
            let last = list.removeLast()
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
                for member in list where member.stream.enqueue(self.run, index: member.index, buffers: &self.buffers) {
                    if isLast {
                        member.stream.flushPending(recycling: &self.buffers)
                    } else {
                        self.markForFlush(member.stream)
                    }
                }
            case .attach(let id, let positions):
                guard let stream = self.streams[id], !stream.isAttached else { continue }
                for (index, channel) in stream.channels.enumerated() {
                    stream.slots[index] = Int32(self.members[channel, default: []].count)
                    self.members[channel, default: []].append(Member(stream: stream, index: index))
                }
                stream.isAttached = true
                if stream.attached(positions) { self.markForFlush(stream) }
            case .fail(let id):
                self.streams[id]?.close(.unavailable, retryMilliseconds: nil)
            case .reset(let channel, let status, let position, let from):
                for member in self.members[channel] ?? []
                where member.stream.nodeReset(index: member.index, status: status, position: position, from: from) {
                    self.markForFlush(member.stream)
                }
            }
        }
        for stream in self.toFlush {
            stream.flushPending(recycling: &self.buffers)
        }
        self.toFlush.removeAll(keepingCapacity: true)
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
