internal import NIOCore

/// The bytes that turn an HTTP connection into a stream, in one place: the response head
/// (written raw, since the HTTP codec leaves the pipeline with it) and the first frame,
/// the reconnection delay.
///
/// No `Content-Length` and no chunked encoding: the body runs until the connection closes,
/// which is what `EventSource` and proxies expect of `text/event-stream`. `no-transform`
/// and `X-Accel-Buffering: no` keep proxies (nginx among them) from compressing or
/// buffering the frames.
enum SSEResponseHead {
    /// The head with `extraHeaders` (CORS), then `retry:`.
    static func bytes(extraHeaders: [(String, String)], retryMilliseconds: Int) -> ByteBuffer {
        var head = ByteBuffer()
        head.writeStaticString("HTTP/1.1 200 OK\r\n")
        head.writeStaticString("Content-Type: text/event-stream; charset=utf-8\r\n")
        head.writeStaticString("Cache-Control: no-cache, no-transform\r\n")
        head.writeStaticString("Connection: keep-alive\r\n")
        head.writeStaticString("X-Accel-Buffering: no\r\n")
        for (name, value) in extraHeaders {
            head.writeString("\(name): \(value)\r\n")
        }
        head.writeStaticString("\r\n")
        var retry = ControlFrame.retry(milliseconds: retryMilliseconds)
        head.writeBuffer(&retry)
        return head
    }
}
