public import NIOCore

/// Writes ``ServerSentEvent``s in the `text/event-stream` format straight into a `ByteBuffer`.
public enum ServerSentEventEncoder {
    /// Checks that `event` can be written without changing the stream's structure.
    public static func validate(_ event: ServerSentEvent) throws(ServerSentEventError) {
        if let id = event.id, !Self.isSingleLine(id) {
            throw ServerSentEventError(.invalidID, "an event id must not contain CR, LF or NUL")
        }
        if let name = event.event, !Self.isSingleLine(name) {
            throw ServerSentEventError(.invalidEventName, "an event name must not contain CR, LF or NUL")
        }
        if let retry = event.retry, retry < 0 {
            throw ServerSentEventError(.invalidRetry, "a retry time must not be negative")
        }
    }

    /// Whether `text` can be an id or event name: no CR, LF or NUL.
    public static func isSingleLine(_ text: String) -> Bool {
        !text.utf8.contains { $0 == 0x0A || $0 == 0x0D || $0 == 0 }
    }

    /// Appends the frame for `event`, ending with the blank line that dispatches it.
    ///
    /// Nothing is written if the event is invalid.
    /// - Returns: the number of bytes written.
    @discardableResult
    public static func encode(
        _ event: ServerSentEvent,
        into buffer: inout ByteBuffer
    ) throws(ServerSentEventError)
        -> Int
    {
        try self.validate(event)
        let start = buffer.writerIndex
        if let comment = event.comment {
            self.writeLines(prefix: ":", comment, into: &buffer)
        }
        if let retry = event.retry {
            buffer.writeStaticString("retry: ")
            buffer.writeString(String(retry))
            buffer.writeInteger(UInt8(ascii: "\n"))
        }
        if let id = event.id {
            buffer.writeStaticString("id: ")
            buffer.writeString(id)
            buffer.writeInteger(UInt8(ascii: "\n"))
        }
        if let name = event.event {
            buffer.writeStaticString("event: ")
            buffer.writeString(name)
            buffer.writeInteger(UInt8(ascii: "\n"))
        }
        if let data = event.data {
            self.writeLines(prefix: "data:", data, into: &buffer)
        }
        buffer.writeInteger(UInt8(ascii: "\n"))
        return buffer.writerIndex - start
    }

    /// A new buffer holding the frame for `event`.
    public static func encode(
        _ event: ServerSentEvent,
        allocator: ByteBufferAllocator
    ) throws(ServerSentEventError)
        -> ByteBuffer
    {
        var buffer = allocator.buffer(capacity: 32 + (event.data?.utf8.count ?? 0))
        try self.encode(event, into: &buffer)
        return buffer
    }

    /// Writes `text` as one `prefix value` line per line of text, splitting on LF, CRLF and CR.
    /// A space always follows the prefix, so a value that starts with a space keeps it.
    private static func writeLines(prefix: StaticString, _ text: String, into buffer: inout ByteBuffer) {
        var text = text
        text.withUTF8 { bytes in
            buffer.reserveCapacity(minimumWritableBytes: bytes.count + 16)
            var lineStart = 0
            var index = 0
            while index < bytes.count {
                let byte = bytes[index]
                if byte == 0x0A || byte == 0x0D {
                    self.writeLine(
                        prefix: prefix,
                        UnsafeBufferPointer(rebasing: bytes[lineStart..<index]),
                        into: &buffer
                    )
                    if byte == 0x0D, index + 1 < bytes.count, bytes[index + 1] == 0x0A { index += 1 }
                    lineStart = index + 1
                }
                index += 1
            }
            self.writeLine(prefix: prefix, UnsafeBufferPointer(rebasing: bytes[lineStart..<bytes.count]), into: &buffer)
        }
    }

    private static func writeLine(
        prefix: StaticString,
        _ line: UnsafeBufferPointer<UInt8>,
        into buffer: inout ByteBuffer
    ) {
        buffer.writeStaticString(prefix)
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeBytes(UnsafeRawBufferPointer(line))
        buffer.writeInteger(UInt8(ascii: "\n"))
    }
}

extension ByteBuffer {
    /// Appends the SSE frame for `event`; see ``ServerSentEventEncoder/encode(_:into:)``.
    @discardableResult
    public mutating func writeServerSentEvent(_ event: ServerSentEvent) throws(ServerSentEventError) -> Int {
        try ServerSentEventEncoder.encode(event, into: &self)
    }
}
