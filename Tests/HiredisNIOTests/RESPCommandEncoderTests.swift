import HiredisNIO
import NIOCore
import Testing

@Suite struct RESPCommandEncoderTests {
    @Test func encodesAnArrayOfBulkStrings() {
        let buffer = RESPCommandEncoder.encode("SET", arguments: ["key", "value"])
        #expect(String(buffer: buffer) == "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n")
    }

    @Test func isBinarySafe() {
        let bytes: [UInt8] = [0, 13, 10, 255, 36, 42]
        let buffer = RESPCommandEncoder.encode("SET", arguments: ["k", RESPArgument(bytes: bytes)])
        let expected = Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$6\r\n".utf8) + bytes + Array("\r\n".utf8)
        #expect(Array(buffer.readableBytesView) == expected)
    }

    @Test func encodesIntegersEmptyStringsAndByteBuffers() {
        let buffer = RESPCommandEncoder.encode("X", arguments: [42, "", RESPArgument(ByteBuffer(string: "bb")), -7])
        #expect(String(buffer: buffer) == "*5\r\n$1\r\nX\r\n$2\r\n42\r\n$0\r\n\r\n$2\r\nbb\r\n$2\r\n-7\r\n")
    }

    @Test func appendsToAnExistingBuffer() {
        var buffer = ByteBuffer(string: "before|")
        RESPCommandEncoder.encode("PING", arguments: [], into: &buffer)
        #expect(String(buffer: buffer) == "before|*1\r\n$4\r\nPING\r\n")
    }
}
