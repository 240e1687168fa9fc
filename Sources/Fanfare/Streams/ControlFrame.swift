internal import FanfareAPI
internal import NIOCore
internal import ServerSentEvents

/// Every frame the node itself writes to a stream, as opposed to published events. Each
/// has one shape and is written here, through ``ServerSentEventEncoder``:
///
/// | frame | when |
/// |---|---|
/// | `retry: <ms>` | first thing on every stream, right after the response head |
/// | `id:` cursor, `event: __connected` + ``ConnectedEvent`` | the node is subscribed to every channel of the stream; the id is where the stream starts |
/// | `id:` cursor, `event: __reset` + ``ResetEvent`` | events of the named channels may be missing; the id is past the gap |
/// | `: heartbeat`, or `event: heartbeat` + `{}` (`--heartbeat-event`) | every heartbeat interval, from one timer per loop |
/// | `: draining`, `: unavailable` or `: token-expired` + `retry: <ms>` | the node closes the stream; come back after that long (with a fresh token) |
/// | `event: __end` + ``EndEvent`` | a run stream wrote its channel's final event and ends |
/// | `event: __disconnect` + ``DisconnectEvent`` | a service ended the stream (`POST /api/sse/disconnect`) |
enum ControlFrame {
    /// Why the node closes a stream and asks the client to come back.
    enum CloseReason: String {
        /// The node is shutting down (SIGTERM); another node takes the client.
        case draining
        /// Redis could not confirm a subscription, or history could not be read.
        case unavailable
        /// The stream's token is no longer accepted; the client comes back with a fresh one.
        case tokenExpired = "token-expired"
        /// The node's delivery check failed: it cannot deliver, so another node takes the
        /// client (a proxy sends it elsewhere, since the node refuses new streams meanwhile).
        case undeliverable
    }

    static func retry(milliseconds: Int) -> ByteBuffer {
        Self.encode(ServerSentEvent(retry: max(0, milliseconds)))
    }

    static func connected(_ connected: ConnectedEvent, id: String) -> ByteBuffer {
        Self.encode(ServerSentEvent(id: id, event: "__connected", data: Self.json(connected)))
    }

    static func reset(_ reset: ResetEvent, id: String) -> ByteBuffer {
        Self.encode(ServerSentEvent(id: id, event: "__reset", data: Self.json(reset)))
    }

    static func end(_ end: EndEvent) -> ByteBuffer {
        Self.encode(ServerSentEvent(event: "__end", data: Self.json(end)))
    }

    static func disconnect(_ disconnect: DisconnectEvent) -> ByteBuffer {
        Self.encode(ServerSentEvent(event: "__disconnect", data: Self.json(disconnect)))
    }

    static func heartbeat(asEvent: Bool) -> ByteBuffer {
        if asEvent {
            return Self.encode(ServerSentEvent(event: "heartbeat", data: "{}"))
        }
        return Self.encode(ServerSentEvent(comment: "heartbeat"))
    }

    static func close(_ reason: CloseReason, retryMilliseconds: Int) -> ByteBuffer {
        Self.encode(ServerSentEvent(retry: max(0, retryMilliseconds), comment: reason.rawValue))
    }

    private static func json(_ value: some Encodable) -> String {
        // The answer types encode plain strings and numbers; they cannot fail.
        (try? APIJSON.string(value)) ?? "{}"
    }

    private static func encode(_ event: ServerSentEvent) -> ByteBuffer {
        do {
            return try ServerSentEventEncoder.encode(event, allocator: ByteBufferAllocator())
        } catch {
            // The names and retry times above are constants the encoder accepts.
            preconditionFailure("a control frame was refused by the encoder: \(error)")
        }
    }
}
