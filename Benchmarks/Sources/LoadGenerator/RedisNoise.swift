import NIOCore
import NIOPosix
import Synchronization

/// Publishes many events on channels nobody in the run listens to, straight into Redis
/// with the cluster's one-command publish, pipelined: the "busy history" around a resume.
enum RedisNoise {
    /// Counts `FCALL` replies (each `*3\r\n…`) until `expected` arrived.
    private final class ReplyCounter: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        private let remaining: Mutex<Int>
        private let done: EventLoopPromise<Void>
        /// The last bytes of the previous read, so a marker cut in two is still found.
        private let tail = Mutex<[UInt8]>([])

        init(expected: Int, done: EventLoopPromise<Void>) {
            self.remaining = Mutex(expected)
            self.done = done
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = Self.unwrapInboundIn(data)
            let bytes = self.tail.withLock { $0 } + Array(buffer.readableBytesView)
            let marker: [UInt8] = Array("*3\r\n".utf8)
            var found = 0
            var index = 0
            while index + marker.count <= bytes.count {
                if bytes[index] == marker[0], Array(bytes[index..<(index + marker.count)]) == marker {
                    found += 1
                    index += marker.count
                } else {
                    index += 1
                }
            }
            self.tail.withLock { $0 = Array(bytes.suffix(marker.count - 1)) }
            let left = self.remaining.withLock { remaining in
                remaining -= found
                return remaining
            }
            if left <= 0 { self.done.succeed() }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            self.done.fail(error)
            context.close(promise: nil)
        }
    }

    static func publish(count: Int, host: String, port: Int, prefix: String, group: any EventLoopGroup) async throws {
        guard count > 0 else { return }
        let done = group.next().makePromise(of: Void.self)
        let counter = ReplyCounter(expected: count, done: done)
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(counter) }
            }
            .connect(host: host, port: port).get()
        var index = 0
        while index < count {
            var batch = ByteBuffer()
            for _ in 0..<min(1_000, count - index) {
                Self.encode(
                    [
                        "FCALL", "\(prefix)_publish", "1", "\(prefix):h:{noise\(index % 1_000)}", "noise",
                        "{\"n\":\(index)}",
                    ],
                    into: &batch
                )
                index += 1
            }
            try await channel.writeAndFlush(batch)
        }
        try await done.futureResult.get()
        try await channel.close()
    }

    private static func encode(_ arguments: [String], into buffer: inout ByteBuffer) {
        buffer.writeString("*\(arguments.count)\r\n")
        for argument in arguments {
            buffer.writeString("$\(argument.utf8.count)\r\n\(argument)\r\n")
        }
    }
}
