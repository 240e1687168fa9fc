internal import NIOCore

/// One open SSE connection as the hub sees it. Loop-confined to its channel's loop.
///
/// Kept small on purpose: idle memory per connection is a figure we report.
final class SSEStream {
    let context: ChannelHandlerContext
    let clientID: String
    let channels: [String]
    /// This stream's position in its hub's list for each of `channels` (same order).
    var slots: [Int]
    /// Set while the stream is on its hub's list of streams to flush after a batch.
    var needsFlush = false
    /// While a resume replays history, live frames wait here (then those not already
    /// replayed are written); `nil` once the stream is live.
    var replayBuffer: [ByteBuffer]?
    /// After a resume, live frames up to this id may still be on their way (the history
    /// read can see an event before its pub/sub copy arrives): they are dropped. Cleared by
    /// the first newer frame, since frames arrive in id order.
    var skipUpTo: EventID?

    init(context: ChannelHandlerContext, clientID: String, channels: [String]) {
        self.context = context
        self.clientID = clientID
        self.channels = channels
        self.slots = Array(repeating: -1, count: channels.count)
    }

    /// Neither replaying nor dropping replayed frames: every frame is written as it comes.
    var isLive: Bool { self.replayBuffer == nil && self.skipUpTo == nil }

    /// Queues `frame` without flushing; the hub flushes once per batch.
    @inline(__always)
    func write(_ frame: ByteBuffer) {
        if self.replayBuffer != nil {
            self.replayBuffer?.append(frame)
            return
        }
        if self.skipUpTo != nil, self.alreadyReplayed(frame) { return }
        self.context.write(NIOAny(frame), promise: nil)
    }

    private func alreadyReplayed(_ frame: ByteBuffer) -> Bool {
        guard let skip = self.skipUpTo, let id = EventID(frame: frame) else { return false }
        if id <= skip { return true }
        self.skipUpTo = nil
        return false
    }

    func flush() {
        if self.replayBuffer == nil { self.context.flush() }
    }

    func writeAndFlush(_ frame: ByteBuffer) {
        if self.replayBuffer != nil {
            self.replayBuffer?.append(frame)
            return
        }
        if self.skipUpTo != nil, self.alreadyReplayed(frame) { return }
        self.context.writeAndFlush(NIOAny(frame), promise: nil)
    }

    /// Ends a resume: writes the replayed frames, then the buffered live frames newer than
    /// `replayedUpTo` (frames without an id, like heartbeats, always), and goes live.
    func finishReplay(replayed: [ByteBuffer], replayedUpTo: EventID?) {
        for frame in replayed { self.context.write(NIOAny(frame), promise: nil) }
        let buffered = self.replayBuffer ?? []
        self.replayBuffer = nil
        self.skipUpTo = replayedUpTo
        for frame in buffered { self.write(frame) }
        self.context.flush()
    }
}

@available(*, unavailable)
extension SSEStream: Sendable {}
