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

    init(context: ChannelHandlerContext, clientID: String, channels: [String]) {
        self.context = context
        self.clientID = clientID
        self.channels = channels
        self.slots = Array(repeating: -1, count: channels.count)
    }

    /// Queues `frame` without flushing; the hub flushes once per batch.
    @inline(__always)
    func write(_ frame: ByteBuffer) {
        self.context.write(NIOAny(frame), promise: nil)
    }

    func flush() {
        self.context.flush()
    }

    func writeAndFlush(_ frame: ByteBuffer) {
        self.context.writeAndFlush(NIOAny(frame), promise: nil)
    }
}

@available(*, unavailable)
extension SSEStream: Sendable {}
