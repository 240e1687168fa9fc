internal import NIOCore
internal import ServerSentEvents

/// Encodes the body of a published event (`event:` and `data:` lines, no `id:`) exactly
/// like the Redis function does.
enum EventFrame {
    static func body(event: String, data: String) throws -> ByteBuffer {
        var buffer = ByteBuffer()
        try buffer.writeServerSentEvent(ServerSentEvent(event: event.isEmpty ? nil : event, data: data))
        return buffer
    }
}
