internal import CHiredis
public import NIOCore

/// Turns the bytes Redis sends into ``RESPValue``s with hiredis's reply reader.
///
/// The decoder owns one `redisReader`, freed in `deinit`. Each `decode` call feeds
/// all readable bytes to the reader and fires every complete reply; the reader keeps
/// partial replies between calls. A reader error is sticky, so it is thrown and the
/// channel closes.
public final class RESPReplyDecoder: ByteToMessageDecoder {
    public typealias InboundOut = RESPValue

    /// Arrays nested deeper than this are refused (hiredis 0.14 stops at 7 itself).
    public static let maximumDepth = 16

    private let reader: UnsafeMutablePointer<redisReader>

    public init() {
        // redisReaderCreate returns NULL only when malloc fails.
        guard let reader = CHiredis_redisReaderCreate() else {
            preconditionFailure("hiredis could not allocate a reply reader")
        }
        self.reader = reader
    }

    deinit {
        redisReaderFree(self.reader)
    }

    public func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        try self.feed(&buffer)
        while let value = try self.nextReply(allocator: context.channel.allocator) {
            context.fireChannelRead(Self.wrapInboundOut(value))
        }
        return .needMoreData
    }

    public func decodeLast(
        context: ChannelHandlerContext,
        buffer: inout ByteBuffer,
        seenEOF: Bool
    ) throws -> DecodingState {
        try self.decode(context: context, buffer: &buffer)
    }

    /// Hands every readable byte of `buffer` to the reader.
    func feed(_ buffer: inout ByteBuffer) throws {
        let count = buffer.readableBytes
        guard count > 0 else { return }
        let status = buffer.withUnsafeReadableBytes { bytes in
            redisReaderFeed(self.reader, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        buffer.moveReaderIndex(forwardBy: count)
        try self.check(status)
    }

    /// The next complete reply, or `nil` when the reader needs more bytes.
    func nextReply(allocator: ByteBufferAllocator) throws -> RESPValue? {
        var object: UnsafeMutableRawPointer? = nil
        try self.check(redisReaderGetReply(self.reader, &object))
        guard let object else { return nil }
        defer { freeReplyObject(object) }
        return try RESPValue(reply: object.assumingMemoryBound(to: redisReply.self), allocator: allocator, depth: 0)
    }

    private func check(_ status: Int32) throws {
        guard status == REDIS_OK else {
            let text = String(cString: CHiredis_redisReaderErrorString(self.reader))
            throw RedisClientError(.protocolError, "invalid RESP from server: \(text)")
        }
    }
}

@available(*, unavailable)
extension RESPReplyDecoder: Sendable {}

extension RESPValue {
    /// Copies a hiredis reply tree into Swift values. The reply stays owned by the caller.
    init(reply: UnsafePointer<redisReply>, allocator: ByteBufferAllocator, depth: Int) throws {
        let node = reply.pointee
        switch node.type {
        case REDIS_REPLY_STRING:
            self = .bulkString(Self.bytes(node.str, node.len, allocator: allocator))
        case REDIS_REPLY_STATUS:
            self = .simpleString(Self.text(node.str, node.len))
        case REDIS_REPLY_ERROR:
            self = .error(Self.text(node.str, node.len))
        case REDIS_REPLY_INTEGER:
            self = .integer(Int64(node.integer))
        case REDIS_REPLY_NIL:
            self = .null
        case REDIS_REPLY_ARRAY:
            guard depth < RESPReplyDecoder.maximumDepth else {
                throw RedisClientError(.protocolError, "reply nested deeper than \(RESPReplyDecoder.maximumDepth)")
            }
            var elements: [RESPValue] = []
            elements.reserveCapacity(Int(node.elements))
            for index in 0..<Int(node.elements) {
                guard let child = CHiredis_redisReplyElement(reply, index) else {
                    throw RedisClientError(.protocolError, "array reply with a missing element")
                }
                elements.append(try RESPValue(reply: child, allocator: allocator, depth: depth + 1))
            }
            self = .array(elements)
        default:
            // RESP3 types exist only in hiredis 1.x and only after HELLO 3, which we never send.
            throw RedisClientError(.protocolError, "unsupported reply type \(node.type)")
        }
    }

    private static func bytes(
        _ pointer: UnsafeMutablePointer<CChar>?,
        _ length: Int,
        allocator: ByteBufferAllocator
    )
        -> ByteBuffer
    {
        guard let pointer, length > 0 else { return allocator.buffer(capacity: 0) }
        return allocator.buffer(bytes: UnsafeRawBufferPointer(start: pointer, count: length))
    }

    private static func text(_ pointer: UnsafeMutablePointer<CChar>?, _ length: Int) -> String {
        guard let pointer, length > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self)
    }
}
