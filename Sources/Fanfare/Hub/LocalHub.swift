internal import NIOCore

/// The streams of one event loop, by channel. Used only on that loop: no locks on the
/// delivery path.
///
/// A batch of frames is written to every matching stream and each stream is flushed once
/// at the end. One heartbeat timer serves every stream of the loop.
final class LocalHub {
    let eventLoop: any EventLoop
    /// Streams per channel in a dense array (fast to walk); each stream remembers its slot
    /// in every list, so removal is a swap with the last element.
    private var byChannel: [String: ContiguousArray<SSEStream>] = [:]
    private var streams: [ObjectIdentifier: SSEStream] = [:]
    private var toFlush: [SSEStream] = []
    private var heartbeat: Scheduled<Void>?
    private let metrics: NodeMetrics?

    init(eventLoop: any EventLoop, metrics: NodeMetrics? = nil) {
        self.eventLoop = eventLoop
        self.metrics = metrics
    }

    var count: Int { self.streams.count }

    func add(_ stream: SSEStream) {
        let key = ObjectIdentifier(stream)
        guard self.streams.updateValue(stream, forKey: key) == nil else { return }
        for (index, channel) in stream.channels.enumerated() {
            stream.slots[index] = self.byChannel[channel, default: []].count
            self.byChannel[channel, default: []].append(stream)
        }
    }

    func remove(_ stream: SSEStream) {
        guard self.streams.removeValue(forKey: ObjectIdentifier(stream)) != nil else { return }
        for (index, channel) in stream.channels.enumerated() {
            guard var list = self.byChannel.removeValue(forKey: channel) else { continue }
            let slot = stream.slots[index]
            let last = list.removeLast()
            if last !== stream {
                list[slot] = last
                if let position = last.channels.firstIndex(of: channel) { last.slots[position] = slot }
            }
            if !list.isEmpty { self.byChannel[channel] = list }
        }
    }

    /// Writes each frame to every stream on its channel, then flushes each stream once.
    func deliver(_ batch: [(channel: String, frame: ByteBuffer)]) {
        guard let first = batch.first else { return }
        if batch.count == 1 || batch.allSatisfy({ $0.channel == first.channel }) {
            self.deliver(batch, allOn: first.channel)
            return
        }
        let now = WallClock.milliseconds()
        for (channel, frame) in batch {
            guard let streams = self.byChannel[channel] else { continue }
            self.record(frame, deliveries: streams.count, now: now)
            for stream in streams {
                stream.write(frame)
                if !stream.needsFlush {
                    stream.needsFlush = true
                    self.toFlush.append(stream)
                }
            }
        }
        for stream in self.toFlush {
            stream.needsFlush = false
            stream.flush()
        }
        self.toFlush.removeAll(keepingCapacity: true)
    }

    /// The common case: one frame, or a burst on one channel (a broadcast, one busy
    /// topic). Every stream on it gets the same bytes, so a burst is joined into one
    /// buffer here, once for the loop, and each stream gets one write and one flush
    /// instead of one write per frame.
    private func deliver(_ batch: [(channel: String, frame: ByteBuffer)], allOn channel: String) {
        guard let streams = self.byChannel[channel] else { return }
        let joined: ByteBuffer
        if batch.count == 1 {
            joined = batch[0].frame
        } else {
            var buffer = ByteBufferAllocator().buffer(capacity: batch.reduce(0) { $0 + $1.frame.readableBytes })
            for (_, frame) in batch { buffer.writeImmutableBuffer(frame) }
            joined = buffer
        }
        for stream in streams {
            if stream.isLive {
                stream.writeAndFlush(joined)
            } else {
                // Replaying or just replayed: each frame is kept or dropped by its id.
                for (_, frame) in batch { stream.write(frame) }
                stream.flush()
            }
        }
        let now = WallClock.milliseconds()
        for (_, frame) in batch { self.record(frame, deliveries: streams.count, now: now) }
    }

    private func record(_ frame: ByteBuffer, deliveries: Int, now: Int64) {
        guard let metrics = self.metrics, deliveries > 0 else { return }
        metrics.deliveries.increment(by: deliveries)
        if let id = EventID(frame: frame) {
            metrics.recordLatency(publishedAtMilliseconds: id.milliseconds, now: UInt64(clamping: now))
        }
    }

    /// Starts the loop's heartbeat: every `interval`, `frame` goes to every stream.
    func startHeartbeat(every interval: TimeAmount, frame: ByteBuffer) {
        self.heartbeat = self.eventLoop.assumeIsolated().scheduleTask(in: interval) {
            for stream in self.streams.values {
                stream.write(frame)
                stream.flush()
            }
            self.startHeartbeat(every: interval, frame: frame)
        }
    }

    /// Every stream, for draining.
    var allStreams: [SSEStream] { Array(self.streams.values) }

    func stop() {
        self.heartbeat?.cancel()
        self.heartbeat = nil
    }
}

@available(*, unavailable)
extension LocalHub: Sendable {}
