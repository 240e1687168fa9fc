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

    @Test func joinsABurstOnOneChannelIntoOneWritePerLiveStream() throws {
        let loop = EmbeddedEventLoop()
        let hub = LocalHub(eventLoop: loop)
        let clients = try self.makeClients([["broadcast"], ["broadcast"], ["broadcast"], ["other"]], loop: loop)
        for client in clients { hub.add(client.stream) }
        let frames = (1...3).map { ByteBuffer(string: "id: 100-\($0)\ndata: \($0)\n\n") }
        let joined = "id: 100-1\ndata: 1\n\nid: 100-2\ndata: 2\n\nid: 100-3\ndata: 3\n\n"
        // clients[1] is resuming: live frames wait for its replay, each on its own.
        clients[1].stream.replayBuffer = []
        // clients[2] has just replayed up to 100-2: only 100-3 is new to it.
        clients[2].stream.skipUpTo = EventID("100-2")

        hub.deliver(frames.map { ("broadcast", $0) })
        #expect(try self.received(clients[0]) == [joined])
        #expect(try self.received(clients[1]).isEmpty)
        #expect(clients[1].stream.replayBuffer?.count == 3)
        #expect(try self.received(clients[2]) == ["id: 100-3\ndata: 3\n\n"])
        #expect(try self.received(clients[3]).isEmpty)

        clients[1].stream.finishReplay(replayed: [], replayedUpTo: EventID("100-1"))
        #expect(try self.received(clients[1]) == ["id: 100-2\ndata: 2\n\n", "id: 100-3\ndata: 3\n\n"])
        for client in clients { _ = try? client.channel.finish() }
    }
}
