import NIOCore
import NIOEmbedded
import Testing

@testable import Fanfare

/// Captures its context so a test can build streams on an embedded channel.
private final class ContextCatcher: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    var context: ChannelHandlerContext?
    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }
}

@Suite struct LocalHubTests {
    private struct Client {
        let channel: EmbeddedChannel
        let stream: SSEStream
    }

    private func makeClients(_ channels: [[String]], loop: EmbeddedEventLoop) throws -> [Client] {
        try channels.enumerated().map { index, names in
            let channel = EmbeddedChannel(loop: loop)
            let catcher = ContextCatcher()
            try channel.pipeline.syncOperations.addHandler(catcher)
            guard let context = catcher.context else { throw ChannelError.ioOnClosedChannel }
            return Client(channel: channel, stream: SSEStream(context: context, clientID: "c\(index)", channels: names))
        }
    }

    private func received(_ client: Client) throws -> [String] {
        var frames: [String] = []
        while let buffer = try client.channel.readOutbound(as: ByteBuffer.self) {
            frames.append(String(buffer: buffer))
        }
        return frames
    }

    @Test func deliversToExactlyTheStreamsOnAChannelAcrossAddsAndRemoves() throws {
        let loop = EmbeddedEventLoop()
        let hub = LocalHub(eventLoop: loop)
        let clients = try self.makeClients(
            [["broadcast", "a"], ["broadcast"], ["broadcast", "a"], ["broadcast", "b"], ["broadcast", "a", "b"]],
            loop: loop
        )
        for client in clients { hub.add(client.stream) }
        hub.add(clients[0].stream)  // adding twice changes nothing
        hub.remove(clients[0].stream)
        hub.remove(clients[2].stream)
        hub.remove(clients[2].stream)  // removing twice changes nothing
        #expect(hub.count == 3)

        hub.deliver([("a", ByteBuffer(string: "A"))])
        hub.deliver([("broadcast", ByteBuffer(string: "all")), ("b", ByteBuffer(string: "B"))])
        #expect(try self.received(clients[0]).isEmpty)
        #expect(try self.received(clients[1]) == ["all"])
        #expect(try self.received(clients[2]).isEmpty)
        #expect(try self.received(clients[3]) == ["all", "B"])
        #expect(try self.received(clients[4]) == ["A", "all", "B"])

        // Re-adding after removals keeps every list consistent.
        hub.add(clients[2].stream)
        hub.remove(clients[4].stream)
        hub.deliver([("a", ByteBuffer(string: "A2"))])
        #expect(try self.received(clients[2]) == ["A2"])
        #expect(try self.received(clients[4]).isEmpty)
        for client in clients { _ = try? client.channel.finish() }
    }
}
