internal import NIOCore

/// Reads and drops whatever a client sends on an SSE connection once it is a stream.
final class DiscardInbound: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

@available(*, unavailable)
extension DiscardInbound: Sendable {}
