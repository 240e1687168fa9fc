import NIOCore

/// A keep-alive HTTP/1.1 publisher: sends one notify at a time and waits for the answer.
/// Counts responses by their status line; bodies are skipped using Content-Length.
final class PublisherHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private var pending: [EventLoopPromise<Int>] = []
    private var buffer = ByteBuffer()

    func send(context: ChannelHandlerContext, request: ByteBuffer, promise: EventLoopPromise<Int>) {
        self.pending.append(promise)
        context.writeAndFlush(NIOAny(request), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = Self.unwrapInboundIn(data)
        self.buffer.writeBuffer(&incoming)
        while let (status, total) = self.completeResponse() {
            self.buffer.moveReaderIndex(forwardBy: total)
            if !self.pending.isEmpty { self.pending.removeFirst().succeed(status) }
        }
    }

    /// The status and total size of the first response, once all of it has arrived.
    private func completeResponse() -> (Int, Int)? {
        let view = self.buffer.readableBytesView
        guard let end = view.firstRange(of: [13, 10, 13, 10]) else { return nil }
        let head = String(decoding: view[view.startIndex..<end.lowerBound], as: UTF8.self)
        let status = Int(head.split(separator: " ").dropFirst().first ?? "0") ?? 0
        var length = 0
        for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
            length = Int(line.split(separator: ":")[1].trimmingCharacters(in: " ")) ?? 0
        }
        let total = (end.upperBound - view.startIndex) + length
        return self.buffer.readableBytes >= total ? (status, total) : nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        for promise in self.pending { promise.fail(ChannelError.ioOnClosedChannel) }
        self.pending.removeAll()
    }
}

extension Substring {
    func trimmingCharacters(in character: Character) -> String {
        String(self.drop(while: { $0 == character }).reversed().drop(while: { $0 == character }).reversed())
    }
}
