internal import NIOCore

/// One retained event.
struct HistoryEntry: Sendable {
    var id: EventID
    var channel: String
    var frame: ByteBuffer
}
