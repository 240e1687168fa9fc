import HiredisNIO
import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing

@Suite struct RESPReplyDecoderTests {
    @Test func decodesEveryReplyType() throws {
        let cases: [(String, [RESPValue])] = [
            ("+OK\r\n", [.simpleString("OK")]),
            ("-ERR wrong\r\n", [.error("ERR wrong")]),
            (":-42\r\n", [.integer(-42)]),
            ("$5\r\nhe\r\no\r\n", [.bulkString(ByteBuffer(string: "he\r\no"))]),
            ("$0\r\n\r\n", [.bulkString(ByteBuffer())]),
            ("$-1\r\n", [.null]),
            ("*-1\r\n", [.null]),
            ("*0\r\n", [.array([])]),
            (
                "*3\r\n:1\r\n*2\r\n+a\r\n$1\r\nb\r\n$-1\r\n",
                [.array([.integer(1), .array([.simpleString("a"), .bulkString(ByteBuffer(string: "b"))]), .null])]
            ),
            ("+one\r\n:2\r\n", [.simpleString("one"), .integer(2)]),
        ]
        try ByteToMessageDecoderVerifier.verifyDecoder(
            stringInputOutputPairs: cases,
            decoderFactory: { RESPReplyDecoder() }
        )
    }

    @Test func keepsAllByteValuesOfABulkString() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(RESPReplyDecoder()))
        let payload = (0...255).map { UInt8($0) }
        var input = ByteBuffer(string: "$256\r\n")
        input.writeBytes(payload)
        input.writeString("\r\n")
        try channel.writeInbound(input)
        let value = try channel.readInbound(as: RESPValue.self)
        #expect(value?.bytes.map { Array($0.readableBytesView) } == payload)
        #expect(try channel.finish().isClean)
    }

    @Test func decodesOneByteAtATime() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(RESPReplyDecoder()))
        for byte in "*2\r\n$3\r\nfoo\r\n:7\r\n".utf8 {
            try channel.writeInbound(ByteBuffer(bytes: [byte]))
        }
        #expect(
            try channel.readInbound(as: RESPValue.self)
                == .array([.bulkString(ByteBuffer(string: "foo")), .integer(7)])
        )
        #expect(try channel.readInbound(as: RESPValue.self) == nil)
        _ = try channel.finish()
    }

    @Test func throwsOnBytesThatAreNotRESP() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(RESPReplyDecoder()))
        #expect(throws: RedisClientError.self) {
            try channel.writeInbound(ByteBuffer(string: "?what\r\n"))
        }
        _ = try? channel.finish()
    }

    @Test func refusesNestingBeyondTheReadersLimit() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(RESPReplyDecoder()))
        let deep = String(repeating: "*1\r\n", count: 40) + ":1\r\n"
        #expect(throws: RedisClientError.self) {
            try channel.writeInbound(ByteBuffer(string: deep))
        }
        _ = try? channel.finish()
    }

    @Test func readsValueAccessors() {
        #expect(RESPValue.bulkString(ByteBuffer(string: "12")).int == 12)
        #expect(RESPValue.integer(3).int == 3)
        #expect(RESPValue.simpleString("OK").string == "OK")
        #expect(RESPValue.null.isNull)
        #expect(RESPValue.array([.integer(1)]).array == [.integer(1)])
        #expect(RESPValue.error("x").string == nil)
    }
}
