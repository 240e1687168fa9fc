internal import FanfareAPI
internal import NIOCore

/// Writes a ``NotifyAnswer`` by hand, byte for byte as ``APIJSON`` would (a test checks
/// that): it is the one answer on the publish path, where a `JSONEncoder` costs more than
/// the rest of the answer.
enum NotifyAnswerWriter {
    static func write(_ answer: NotifyAnswer) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(96 + answer.id.utf8.count + (answer.clientId?.utf8.count ?? 0))
        buffer.writeStaticString("{")
        if let clientID = answer.clientId {
            buffer.writeStaticString(#""clientId":"#)
            Self.quote(clientID, into: &buffer)
            buffer.writeStaticString(",")
        }
        buffer.writeStaticString(#""connections":"#)
        buffer.writeString(String(answer.connections))
        if let duplicate = answer.duplicate {
            buffer.writeStaticString(duplicate ? #","duplicate":true"# : #","duplicate":false"#)
        }
        buffer.writeStaticString(#","id":"#)
        Self.quote(answer.id, into: &buffer)
        buffer.writeStaticString(answer.ok ? #","ok":true,"sent":"# : #","ok":false,"sent":"#)
        buffer.writeStaticString(answer.sent ? "true}" : "false}")
        return buffer
    }

    /// `string` as a JSON string literal, escaped the way `JSONEncoder` escapes.
    static func quote(_ string: String, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "\""))
        // Ids and positions never need escaping: written in one go.
        if !string.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            buffer.writeString(string)
            buffer.writeInteger(UInt8(ascii: "\""))
            return
        }
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): buffer.writeStaticString(#"\""#)
            case UInt8(ascii: "\\"): buffer.writeStaticString(#"\\"#)
            case 0x0A: buffer.writeStaticString(#"\n"#)
            case 0x0D: buffer.writeStaticString(#"\r"#)
            case 0x09: buffer.writeStaticString(#"\t"#)
            case 0x08: buffer.writeStaticString(#"\b"#)
            case 0x0C: buffer.writeStaticString(#"\f"#)
            case 0x00..<0x20:
                buffer.writeStaticString(#"\u00"#)
                buffer.writeInteger(Self.hexDigit(byte >> 4))
                buffer.writeInteger(Self.hexDigit(byte & 0x0F))
            default: buffer.writeInteger(byte)
            }
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }
}
