import NIOCore
import ServerSentEvents
import Testing

@Suite struct ServerSentEventParserTests {
    private func parse(_ text: String) -> [ServerSentEvent] {
        var parser = ServerSentEventParser()
        return parser.parse(bytes: Array(text.utf8))
    }

    @Test func dispatchesOnABlankLine() {
        #expect(self.parse("data: hello\n\n") == [ServerSentEvent(data: "hello")])
        #expect(self.parse("data: hello\n").isEmpty)
    }

    @Test func acceptsLFCRAndCRLFLineEnds() {
        let expected = [ServerSentEvent(event: "e", data: "a\nb")]
        #expect(self.parse("event: e\ndata: a\ndata: b\n\n") == expected)
        #expect(self.parse("event: e\rdata: a\rdata: b\r\r") == expected)
        #expect(self.parse("event: e\r\ndata: a\r\ndata: b\r\n\r\n") == expected)
        #expect(self.parse("event: e\r\ndata: a\rdata: b\n\r\n") == expected)
    }

    @Test func countsACRLFSplitAcrossChunksOnce() {
        var parser = ServerSentEventParser()
        let events1 = parser.parse(bytes: Array("data: a\r".utf8))
        #expect(events1.isEmpty)
        // The LF completes the CRLF; it must not count as the blank line.
        let events2 = parser.parse(bytes: Array("\ndata: b\r".utf8))
        #expect(events2.isEmpty)
        let events3 = parser.parse(bytes: Array("\n\r\n".utf8))
        #expect(events3 == [ServerSentEvent(data: "a\nb")])
    }

    @Test func stripsOneLeadingByteOrderMarkOnly() {
        #expect(self.parse("\u{FEFF}data: x\n\n") == [ServerSentEvent(data: "x")])
        // A second BOM is part of the field name, which is then unknown.
        #expect(self.parse("\u{FEFF}\u{FEFF}data: x\n\n").isEmpty)
        // A BOM later in the stream is not special.
        #expect(self.parse("data: x\n\n\u{FEFF}data: y\n\n") == [ServerSentEvent(data: "x")])
        var parser = ServerSentEventParser()
        let events4 = parser.parse(bytes: [0xEF, 0xBB])
        #expect(events4.isEmpty)
        let events5 = parser.parse(bytes: [0xBF] + Array("data: split\n\n".utf8))
        #expect(events5 == [ServerSentEvent(data: "split")])
    }

    @Test func removesExactlyOneSpaceAfterTheColon() {
        #expect(self.parse("data:x\n\n").map(\.data) == ["x"])
        #expect(self.parse("data: x\n\n").map(\.data) == ["x"])
        #expect(self.parse("data:  x\n\n").map(\.data) == [" x"])
        #expect(self.parse("data:x:y\n\n").map(\.data) == ["x:y"])
    }

    @Test func aFieldWithoutColonHasAnEmptyValue() {
        #expect(self.parse("data\n\n").map(\.data) == [""])
        #expect(self.parse("data\ndata\n\n").map(\.data) == ["\n"])
    }

    @Test func ignoresCommentsAndUnknownFields() {
        #expect(self.parse(": keep-alive\n\n").isEmpty)
        #expect(self.parse("foo: bar\ndata: x\nDATA: y\n\n") == [ServerSentEvent(data: "x")])
    }

    @Test func takesRetryOnlyWhenAllDigits() {
        var parser = ServerSentEventParser()
        _ = parser.parse(bytes: Array("retry: 1500\n\n".utf8))
        #expect(parser.reconnectionTime == 1500)
        _ = parser.parse(bytes: Array("retry: 12a\nretry: -5\nretry:\nretry: 1 \nretry: 3.5\n\n".utf8))
        #expect(parser.reconnectionTime == 1500)
        _ = parser.parse(bytes: Array("retry:007\n".utf8))
        #expect(parser.reconnectionTime == 7)
    }

    @Test func ignoresIDsContainingNUL() {
        #expect(
            self.parse("id: 1\ndata: a\n\nid: 2\u{0}\ndata: b\n\n") == [
                ServerSentEvent(id: "1", data: "a"), ServerSentEvent(id: "1", data: "b"),
            ]
        )
    }

    @Test func keepsTheLastEventIDAcrossEventsUntilReset() {
        let events = self.parse("id: 5\ndata: a\n\ndata: b\n\nid\ndata: c\n\nid: 6\n\ndata: d\n\n")
        #expect(events.map(\.id) == ["5", "5", nil, "6"])
    }

    @Test func doesNotDispatchWithoutData() {
        #expect(self.parse("event: e\n\nid: 1\n\n\n\n").isEmpty)
        // The event type is reset by the blank line even when nothing was dispatched.
        #expect(self.parse("event: e\n\ndata: x\n\n") == [ServerSentEvent(id: nil, event: nil, data: "x")])
    }

    @Test func dropsAnUnfinishedEventAtTheEnd() {
        #expect(self.parse("data: a\n\ndata: b\n") == [ServerSentEvent(data: "a")])
    }

    @Test func replacesInvalidUTF8() {
        var parser = ServerSentEventParser()
        let events = parser.parse(bytes: Array("data: ".utf8) + [0xFF, 0x41] + Array("\n\n".utf8))
        #expect(events.map(\.data) == ["\u{FFFD}A"])
    }

    @Test func handlesOneByteAtATime() {
        let text = "\u{FEFF}id: é1\r\nevent: ünï\r\ndata: line 1\r\ndata: 🎉\r\r: c\ndata: 2\n\n"
        var parser = ServerSentEventParser()
        var events: [ServerSentEvent] = []
        for byte in text.utf8 {
            events += parser.parse(bytes: [byte])
        }
        #expect(
            events == [
                ServerSentEvent(id: "é1", event: "ünï", data: "line 1\n🎉"), ServerSentEvent(id: "é1", data: "2"),
            ]
        )
    }

    @Test func parsesFromAByteBuffer() {
        var parser = ServerSentEventParser()
        let buffer = ByteBuffer(string: "data: from a buffer\n\n")
        let events6 = parser.parse(buffer)
        #expect(events6 == [ServerSentEvent(data: "from a buffer")])
    }
}
