public import NIOCore

/// One argument of a Redis command: text, raw bytes or an integer. Binary safe.
public struct RESPArgument: Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    enum Storage: Sendable, Hashable {
        case string(String)
        case bytes(ByteBuffer)
        case bytesArray([UInt8])
        case integer(Int64)
    }

    let storage: Storage

    public init(_ string: String) { self.storage = .string(string) }
    public init(_ bytes: ByteBuffer) { self.storage = .bytes(bytes) }
    public init(bytes: [UInt8]) { self.storage = .bytesArray(bytes) }
    public init<Integer: BinaryInteger>(_ value: Integer) { self.storage = .integer(Int64(value)) }
    public init(stringLiteral value: String) { self.storage = .string(value) }
    public init(integerLiteral value: Int64) { self.storage = .integer(value) }

    /// Appends this argument's bytes to `scratch`.
    func append(to scratch: inout [UInt8]) {
        switch self.storage {
        case .string(let string):
            scratch.append(contentsOf: string.utf8)
        case .bytes(let buffer):
            buffer.withUnsafeReadableBytes { scratch.append(contentsOf: $0) }
        case .bytesArray(let bytes):
            scratch.append(contentsOf: bytes)
        case .integer(let value):
            scratch.append(contentsOf: String(value).utf8)
        }
    }
}
