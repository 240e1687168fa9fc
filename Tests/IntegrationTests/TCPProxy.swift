import NIOCore
import NIOPosix
import Synchronization

/// A TCP proxy on a free loopback port in front of one upstream address, for fault tests:
/// it relays both ways until told to cut a connection at an exact moment, or to drop the
/// pub/sub messages Redis pushes while passing every reply (a half-broken path).
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
            var dropsPushes = false
            var droppedPushes = 0
            /// New connections past this many are closed at once (nil: all are relayed).
            var admitted: Int?
            var opened = 0
            var refused = 0
        }

        private let state = Mutex(State())

        func armCut(after marker: String) {
            self.state.withLock { $0.cutAfterForwarding = Array(marker.utf8) }
        }

        var cuts: Int { self.state.withLock { $0.cuts } }

        func admit(_ count: Int?) {
            self.state.withLock { $0.admitted = count }
        }

        var refused: Int { self.state.withLock { $0.refused } }

        /// Whether to close a new connection at once (and count it).
        fileprivate func refusesNewConnection() -> Bool {
            self.state.withLock { state in
                if let admitted = state.admitted, state.opened >= admitted {
                    state.refused += 1
                    return true
                }
                state.opened += 1
                return false
            }
        }

        func dropPushes(_ drop: Bool) {
            self.state.withLock { $0.dropsPushes = drop }
        }

        var droppedPushes: Int { self.state.withLock { $0.droppedPushes } }

        /// Whether to drop this whole RESP value from the server (a message push while
        /// pushes are dropped).
        fileprivate func shouldDrop(_ value: ByteBufferView) -> Bool {
            self.state.withLock { state in
                guard state.dropsPushes, RESPFrames.isMessagePush(value) else { return false }
                state.droppedPushes += 1
                return true
            }
        }

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
                if rules.refusesNewConnection() {
                    return inbound.close()
                }
                // Connect upstream first; start reading from the client once it is there.
                return ClientBootstrap(group: inbound.eventLoop)
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

    /// Relays only the first `count` connections ever made through it and closes the
    /// later ones at once, until called with `nil`.
    func admitConnections(_ count: Int?) {
        self.rules.admit(count)
    }

    var refusedConnections: Int { self.rules.refused }

    /// From now on (until called with `false`), pub/sub messages from Redis (`message`,
    /// `smessage`, `pmessage` pushes) are dropped; replies, PONGs and subscribe
    /// confirmations still pass.
    func dropPushes(_ drop: Bool) {
        self.rules.dropPushes(drop)
    }

    var droppedPushes: Int { self.rules.droppedPushes }

    func stop() async {
        try? await self.server.close()
        self.rules.closeAll()
    }

    private final class Relay: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let peer: any Channel
        let rules: Rules
        let cutsAfterForwarding: Bool
        /// From the server: bytes of a RESP value not complete yet.
        private var partial: ByteBuffer?

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
            guard !self.cutsAfterForwarding else {
                peer.writeAndFlush(bytes, promise: nil)
                return
            }
            // From the server: whole RESP values only, each passed or dropped.
            var buffer = self.partial.take() ?? context.channel.allocator.buffer(capacity: bytes.readableBytes)
            var incoming = bytes
            buffer.writeBuffer(&incoming)
            var out = context.channel.allocator.buffer(capacity: buffer.readableBytes)
            while let length = RESPFrames.length(of: buffer.readableBytesView) {
                guard let value = buffer.readSlice(length: length) else { break }
                if !self.rules.shouldDrop(value.readableBytesView) {
                    var value = value
                    out.writeBuffer(&value)
                }
            }
            if buffer.readableBytes > 0 { self.partial = buffer }
            if out.readableBytes > 0 { peer.writeAndFlush(out, promise: nil) }
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

/// Just enough RESP2 to cut a byte stream into whole values.
enum RESPFrames {
    /// The length of the whole value at the start of `bytes`, or `nil` when it is not all there.
    static func length(of bytes: ByteBufferView) -> Int? {
        var index = bytes.startIndex
        guard Self.skipValue(bytes, &index) else { return nil }
        return index - bytes.startIndex
    }

    private static func skipValue(_ bytes: ByteBufferView, _ index: inout Int) -> Bool {
        guard index < bytes.endIndex else { return false }
        let type = bytes[index]
        guard let (number, next) = Self.line(bytes, after: index) else { return false }
        index = next
        switch type {
        case UInt8(ascii: "$"):
            guard number >= 0 else { return true }
            guard bytes.endIndex - index >= number + 2 else { return false }
            index += number + 2
            return true
        case UInt8(ascii: "*"):
            guard number > 0 else { return true }
            for _ in 0..<number where !Self.skipValue(bytes, &index) { return false }
            return true
        default:
            return true  // +, -, : carry their value on the line
        }
    }

    /// The number on the line that starts at `start` (after the type byte; 0 when it is
    /// not one) and the index after its CRLF.
    private static func line(_ bytes: ByteBufferView, after start: Int) -> (Int, Int)? {
        var index = start + 1
        while index + 1 < bytes.endIndex {
            if bytes[index] == UInt8(ascii: "\r"), bytes[index + 1] == UInt8(ascii: "\n") {
                let text = String(decoding: bytes[(start + 1)..<index], as: UTF8.self)
                return (Int(text) ?? 0, index + 2)
            }
            index += 1
        }
        return nil
    }

    /// Whether the value is a pub/sub message push.
    static func isMessagePush(_ value: ByteBufferView) -> Bool {
        let prefixes = ["*3\r\n$7\r\nmessage\r\n", "*3\r\n$8\r\nsmessage\r\n", "*4\r\n$8\r\npmessage\r\n"]
        return prefixes.contains { value.starts(with: $0.utf8) }
    }
}
