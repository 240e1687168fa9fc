internal import NIOCore
internal import ServerSentEvents

/// Encodes the frame of a published event exactly like the Redis function does.
enum EventFrame {
    static func encode(id: String, event: String, data: String) throws -> ByteBuffer {
        var buffer = ByteBuffer()
        try buffer.writeServerSentEvent(ServerSentEvent(id: id, event: event.isEmpty ? nil : event, data: data))
        return buffer
    }
}
