internal import NIOCore

/// One published event as the bus hands it over: its channel, its position there, the
/// position of the channel's event before it, and its SSE body (`event:` and `data:`
/// lines and the blank line, no `id:`), encoded once where it was published.
///
/// `predecessor` makes gaps visible: an event whose predecessor is not the last position
/// a reader has means events in between are missing (a lost pub/sub message, trimmed
/// history), so the reader catches up from history instead of skipping them.
struct BusEvent: Sendable {
    var channel: String
    var position: StreamPosition
    var predecessor: StreamPosition
    var body: ByteBuffer
    /// The event ends its channel (a run's last): a run stream ends after it.
    var isFinal = false
}
