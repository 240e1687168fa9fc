import NIOCore
import Testing

@testable import Fanfare

/// The stream's response head, byte for byte: what EventSource, curl and nginx see first.
@Suite struct SSEResponseHeadTests {
    @Test func theHeadAndTheRetryFrameAreExactlyThese() {
        let plain = SSEResponseHead.bytes(extraHeaders: [], retryMilliseconds: 2_000)
        #expect(
            String(buffer: plain)
                == "HTTP/1.1 200 OK\r\n"
                + "Content-Type: text/event-stream; charset=utf-8\r\n"
                + "Cache-Control: no-cache, no-transform\r\n"
                + "Connection: keep-alive\r\n"
                + "X-Accel-Buffering: no\r\n"
                + "\r\n"
                + "retry: 2000\n\n"
        )
    }

    @Test func corsHeadersGoBeforeTheBlankLine() {
        let head = SSEResponseHead.bytes(
            extraHeaders: [("Access-Control-Allow-Origin", "https://app.example.org"), ("Vary", "Origin")],
            retryMilliseconds: 500
        )
        let text = String(buffer: head)
        #expect(
            text.hasSuffix(
                "X-Accel-Buffering: no\r\nAccess-Control-Allow-Origin: https://app.example.org\r\nVary: Origin\r\n\r\n"
                    + "retry: 500\n\n"
            )
        )
        // No length and no chunking: the body runs until the connection closes.
        #expect(!text.lowercased().contains("content-length") && !text.lowercased().contains("transfer-encoding"))
    }
}
