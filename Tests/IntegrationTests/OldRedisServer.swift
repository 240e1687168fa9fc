import NIOCore
import NIOPosix

/// A loopback server that answers RESP as a Redis 6 would: `INFO server` says 6.2.14, and
/// `FCALL` and `FUNCTION` are unknown commands (functions came with Redis 7). Everything
/// else is `+OK`. For the node's check of the Redis version; no Redis 6 is installed here.
final class OldRedisServer: Sendable {
    private let channel: any Channel
    let port: Int

    init() async throws {
        self.channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Handler()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        guard let port = self.channel.localAddress?.port else { throw TestFailure("the fake Redis has no port") }
        self.port = port
    }

    func stop() async {
        try? await self.channel.close()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        private var buffer = ByteBuffer()

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var incoming = Self.unwrapInboundIn(data)
            self.buffer.writeBuffer(&incoming)
            while let command = Self.command(&self.buffer) {
                var reply = context.channel.allocator.buffer(capacity: 64)
                switch command.first?.uppercased() {
                case "INFO":
                    let text = "# Server\r\nredis_version:6.2.14\r\n"
                    reply.writeString("$\(text.utf8.count)\r\n\(text)\r\n")
                case "FCALL", "FUNCTION":
                    reply.writeString("-ERR unknown command '\(command[0])', with args beginning with: \r\n")
                default:
                    reply.writeString("+OK\r\n")
                }
                context.writeAndFlush(NIOAny(reply), promise: nil)
            }
        }

        /// One complete command (an array of bulk strings) off the front of `buffer`.
        private static func command(_ buffer: inout ByteBuffer) -> [String]? {
            var view = buffer
            func line() -> String? {
                guard let end = view.readableBytesView.firstIndex(of: UInt8(ascii: "\r")),
                    end + 1 < view.writerIndex
                else { return nil }
                let text = view.readString(length: end - view.readerIndex)
                view.moveReaderIndex(forwardBy: 2)
                return text
            }
            guard let header = line(), header.first == "*", let count = Int(header.dropFirst()) else { return nil }
            var parts: [String] = []
            for _ in 0..<count {
                guard let size = line(), size.first == "$", let length = Int(size.dropFirst()),
                    view.readableBytes >= length + 2, let part = view.readString(length: length)
                else { return nil }
                view.moveReaderIndex(forwardBy: 2)
                parts.append(part)
            }
            buffer = view
            return parts
        }
    }
}
