internal import NIOCore

/// The streams of one event loop, by channel. Used only on that loop: no locks on the
/// delivery path.
///
/// A batch of frames is written to every matching stream and each stream is flushed once
/// at the end. One heartbeat timer serves every stream of the loop.
final class LocalHub {
    let eventLoop: any EventLoop
    private var byChannel: [String: [ObjectIdentifier: SSEStream]] = [:]
    private var streams: [ObjectIdentifier: SSEStream] = [:]
    private var toFlush: [SSEStream] = []
    private var heartbeat: Scheduled<Void>?

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    var count: Int { self.streams.count }

    func add(_ stream: SSEStream) {
        let key = ObjectIdentifier(stream)
        self.streams[key] = stream
        for channel in stream.channels {
            self.byChannel[channel, default: [:]][key] = stream
        }
    }

    func remove(_ stream: SSEStream) {
        let key = ObjectIdentifier(stream)
        guard self.streams.removeValue(forKey: key) != nil else { return }
        for channel in stream.channels {
            self.byChannel[channel]?.removeValue(forKey: key)
            if self.byChannel[channel]?.isEmpty == true { self.byChannel[channel] = nil }
        }
    }

    /// Writes each frame to every stream on its channel, then flushes each stream once.
    func deliver(_ batch: [(channel: String, frame: ByteBuffer)]) {
        for (channel, frame) in batch {
            guard let streams = self.byChannel[channel] else { continue }
            for stream in streams.values {
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
