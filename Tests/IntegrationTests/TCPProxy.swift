import NIOCore
import NIOPosix
import Synchronization

/// A TCP proxy on a free loopback port in front of one upstream address, for fault tests:
/// it relays both ways until told to cut a connection at an exact moment.
final class TCPProxy: Sendable {
    private let server: any Channel
    let port: Int
    private let rules: Rules

    /// What the proxy does to the bytes it relays.
    final class Rules: Sendable {
        private struct State {
            /// Cut the connection that sends these bytes, once they were forwarded and
            /// before any answer goes back.
            var cutAfterForwarding: [UInt8]?
            var cuts = 0
            var connections: [any Channel] = []
        }

        private let state = Mutex(State())

        func armCut(after marker: String) {
            self.state.withLock { $0.cutAfterForwarding = Array(marker.utf8) }
        }

        var cuts: Int { self.state.withLock { $0.cuts } }

        fileprivate func add(_ channel: any Channel) {
            self.state.withLock { $0.connections.append(channel) }
        }

        /// Whether to cut after forwarding `bytes` (the rule then disarms).
        fileprivate func shouldCut(after bytes: ByteBuffer) -> Bool {
            self.state.withLock { state in
                guard let marker = state.cutAfterForwarding,
                    bytes.readableBytesView.firstRange(of: marker) != nil
                else { return false }
                state.cutAfterForwarding = nil
                state.cuts += 1
                return true
            }
        }

        fileprivate func closeAll() {
            for channel in self.state.withLock({ $0.connections }) { channel.close(promise: nil) }
        }
    }

    init(upstreamPort: Int) async throws {
        let rules = Rules()
        let group = MultiThreadedEventLoopGroup.singleton
        self.rules = rules
        self.server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { inbound in
                // Connect upstream first; start reading from the client once it is there.
                ClientBootstrap(group: inbound.eventLoop)
                    .connect(host: "127.0.0.1", port: upstreamPort)
                    .flatMap { outbound in
                        rules.add(inbound)
                        rules.add(outbound)
                        return inbound.eventLoop.makeCompletedFuture {
                            try inbound.pipeline.syncOperations.addHandler(
                                Relay(peer: outbound, rules: rules, cutsAfterForwarding: true)
                            )
                            try outbound.pipeline.syncOperations.addHandler(
                                Relay(peer: inbound, rules: rules, cutsAfterForwarding: false)
                            )
                            inbound.read()
                        }
                    }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        self.port = self.server.localAddress?.port ?? 0
    }

    var url: String { "redis://127.0.0.1:\(self.port)" }

    /// The next chunk a client sends that contains `marker` is forwarded upstream, and then
    /// both sides of that connection are closed: the server acted on it, and its answer is
    /// lost.
    func cutAfterForwarding(_ marker: String) {
        self.rules.armCut(after: marker)
    }

    var cuts: Int { self.rules.cuts }

    func stop() async {
        try? await self.server.close()
        self.rules.closeAll()
    }

    private final class Relay: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let peer: any Channel
        let rules: Rules
        let cutsAfterForwarding: Bool

        init(peer: any Channel, rules: Rules, cutsAfterForwarding: Bool) {
            self.peer = peer
            self.rules = rules
            self.cutsAfterForwarding = cutsAfterForwarding
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = Self.unwrapInboundIn(data)
            let channel = context.channel
            let peer = self.peer
            if self.cutsAfterForwarding, self.rules.shouldCut(after: bytes) {
                // Forwarded, then cut before anything comes back.
                peer.writeAndFlush(bytes).whenComplete { _ in
                    channel.close(promise: nil)
                    peer.close(promise: nil)
                }
                return
            }
            peer.writeAndFlush(bytes, promise: nil)
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            context.read()
        }

        func channelActive(context: ChannelHandlerContext) {
            context.read()
            context.fireChannelActive()
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.peer.close(promise: nil)
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
