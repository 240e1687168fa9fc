/// One Server-Sent Events frame.
///
/// `data` may hold any text; line breaks (LF, CRLF or CR) become separate `data:` lines
/// on the wire and LF after parsing. `id` and `event` must not contain CR, LF or NUL:
/// the encoder refuses them so a value can never start a new field or frame.
/// A frame without `data` dispatches nothing in a browser but still sets the id or the
/// retry time; a frame with only a `comment` is a keep-alive.
public struct ServerSentEvent: Sendable, Hashable {
    public var id: String?
    public var event: String?
    public var data: String?
    /// Reconnection time in milliseconds.
    public var retry: Int?
    public var comment: String?

    public init(
        id: String? = nil,
        event: String? = nil,
        data: String? = nil,
        retry: Int? = nil,
        comment: String? = nil
    ) {
        self.id = id
        self.event = event
        self.data = data
        self.retry = retry
        self.comment = comment
    }
}
