import NIOCore
import ServerSentEvents
import Testing

@Suite struct ServerSentEventEncoderTests {
    private func encoded(_ event: ServerSentEvent) throws -> String {
        var buffer = ByteBuffer()
        try buffer.writeServerSentEvent(event)
        return String(buffer: buffer)
    }

    @Test func writesEveryFieldInOrder() throws {
        let text = try self.encoded(
            ServerSentEvent(id: "7", event: "update", data: "{\"a\":1}", retry: 2500, comment: "hi")
        )
        #expect(text == ": hi\nretry: 2500\nid: 7\nevent: update\ndata: {\"a\":1}\n\n")
    }

    @Test func splitsDataOnEveryLineEnding() throws {
        let text = try self.encoded(ServerSentEvent(data: "a\nb\r\nc\rd"))
        #expect(text == "data: a\ndata: b\ndata: c\ndata: d\n\n")
    }

    @Test func keepsEmptyLinesAndTrailingBreaks() throws {
        #expect(try self.encoded(ServerSentEvent(data: "a\n\nb\n")) == "data: a\ndata: \ndata: b\ndata: \n\n")
        #expect(try self.encoded(ServerSentEvent(data: "")) == "data: \n\n")
    }

    @Test func aLeadingSpaceInDataSurvivesParsing() throws {
        var buffer = ByteBuffer()
        try buffer.writeServerSentEvent(ServerSentEvent(data: "  two spaces"))
        var parser = ServerSentEventParser()
        let events = parser.parse(buffer)
        #expect(events.map(\.data) == ["  two spaces"])
    }

    @Test func splitsMultiLineComments() throws {
        #expect(try self.encoded(ServerSentEvent(comment: "one\ntwo")) == ": one\n: two\n\n")
    }

    @Test(arguments: ["a\nb", "a\rb", "a\r\nb", "a\u{0}b", "\n"])
    func refusesInjectionInIDs(_ id: String) {
        var buffer = ByteBuffer()
        #expect(throws: ServerSentEventError.self) {
            try buffer.writeServerSentEvent(ServerSentEvent(id: id, data: "x"))
        }
        #expect(buffer.readableBytes == 0)
        do {
            try buffer.writeServerSentEvent(ServerSentEvent(id: id, data: "x"))
        } catch {
            #expect(error.code == .invalidID)
        }
    }

    @Test(arguments: ["a\nb", "a\rb", "x\r\ndata: injected", "a\u{0}b"])
    func refusesInjectionInEventNames(_ name: String) {
        var buffer = ByteBuffer()
        do {
            try buffer.writeServerSentEvent(ServerSentEvent(event: name, data: "x"))
            Issue.record("an event name with a line break was accepted")
        } catch {
            #expect(error.code == .invalidEventName)
        }
        #expect(buffer.readableBytes == 0)
    }

    @Test func refusesNegativeRetry() {
        #expect(throws: ServerSentEventError(.invalidRetry, "a retry time must not be negative")) {
            try ServerSentEventEncoder.validate(ServerSentEvent(retry: -1))
        }
    }

    @Test func returnsTheNumberOfBytesWritten() throws {
        var buffer = ByteBuffer(string: "prefix")
        let written = try buffer.writeServerSentEvent(ServerSentEvent(data: "é"))
        #expect(written == "data: é\n\n".utf8.count)
        #expect(buffer.readableBytes == 6 + written)
    }
}
