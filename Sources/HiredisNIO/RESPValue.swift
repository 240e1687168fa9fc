public import NIOCore

/// A reply from Redis, copied out of hiredis into Swift values.
///
/// Bulk strings keep their bytes exactly (binary safe); simple strings and errors are text.
/// An error reply is a value here: the command API turns it into a thrown ``RedisClientError``.
public enum RESPValue: Sendable, Hashable {
    case simpleString(String)
    case error(String)
    case integer(Int64)
    case bulkString(ByteBuffer)
    case array([RESPValue])
    case null
}

extension RESPValue {
    /// The text of a simple or bulk string (bulk bytes decoded as UTF-8), otherwise `nil`.
    public var string: String? {
        switch self {
        case .simpleString(let text): text
        case .bulkString(let bytes): String(buffer: bytes)
        default: nil
        }
    }

    /// The integer of an integer reply, or of a bulk/simple string that spells one.
    public var int: Int64? {
        switch self {
        case .integer(let value): value
        case .bulkString, .simpleString: self.string.flatMap { Int64($0) }
        default: nil
        }
    }

    /// The bytes of a bulk string, otherwise `nil`.
    public var bytes: ByteBuffer? {
        if case .bulkString(let bytes) = self { return bytes }
        return nil
    }

    /// The elements of an array reply, otherwise `nil`.
    public var array: [RESPValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// Whether this is the nil reply.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}
