import Foundation
import NIOCore
import NIOEmbedded
import NIOPosix
import Testing

@testable import Fanfare

/// A loop's hub writing batches to real stream handlers on embedded channels.
@Suite struct LocalHubTests {
    private struct Client {
        let channel: EmbeddedChannel
        let stream: SSEStreamHandler
    }

    private func clients(_ channels: [[String]], node: NodeContext, loop: EmbeddedEventLoop) throws -> [Client] {
        try channels.enumerated().map { index, names in
            let channel = EmbeddedChannel(loop: loop)
            let stream = SSEStreamHandler(
                node: node,
                clientID: "c\(index)",
                channels: names,
                resume: .none,
                address: "127.0.0.1",
                eventLoop: loop
            )
            try channel.pipeline.syncOperations.addHandler(stream)
            return Client(channel: channel, stream: stream)
        }
    }

    /// Every write since the last call, one string per write.
    private func written(_ client: Client) throws -> [String] {
        var writes: [String] = []
        while let buffer = try client.channel.readOutbound(as: ByteBuffer.self) {
            writes.append(String(buffer: buffer))
        }
        return writes
    }

    private func event(_ n: Int, _ channel: String) -> NodeHub.Item {
        .event(Events.event(n, channel: channel))
    }

    @Test func eventsReachExactlyTheAttachedStreamsOfTheirChannelEachWithItsOwnCursor() async throws {
        let (node, group) = try await TestNode.context()
        let loop = EmbeddedEventLoop()
        let hub = LocalHub(eventLoop: loop)
        let clients = try self.clients(
            [["a", "broadcast"], ["broadcast"], ["b", "broadcast"]],
            node: node,
            loop: loop
        )
        for client in clients { hub.add(client.stream) }
        // Only attached streams get events: the first two are attached.
        hub.apply(
            clients.prefix(2).map {
                .attach($0.stream.id, $0.stream.channels.map { _ in Events.position(0) })
            }
        )
        for client in clients.prefix(2) {
            let connected = try self.written(client)
            #expect(connected.count == 1 && connected[0].contains("event: __connected"))
        }
        hub.apply([self.event(1, "broadcast"), self.event(1, "a"), self.event(1, "b")])
        let first = try self.written(clients[0])
        // One write for the batch: both events, each with the stream's cursor before it.
        #expect(first.count == 1)
        let ids = first[0].split(separator: "\n").filter { $0.hasPrefix("id: ") }.map { String($0.dropFirst(4)) }
        #expect(ids.count == 2)
        let channels = ["a", "broadcast"]
        #expect(ids.map { Cursor.decode($0)?[Cursor.tag("broadcast")] } == [Events.position(1), Events.position(1)])
        #expect(ids.map { Cursor.decode($0)?[Cursor.tag("a")] } == [.zero, Events.position(1)])
        #expect(channels.count == 2)
        #expect(try self.written(clients[1]).count == 1)
        #expect(try self.written(clients[2]).isEmpty)

        // Removing streams keeps every channel's list consistent.
        hub.remove(clients[0].stream)
        hub.apply([.attach(clients[2].stream.id, [Events.position(1), Events.position(1)])])
        _ = try self.written(clients[2])
        hub.apply([self.event(2, "broadcast"), self.event(2, "a")])
        #expect(try self.written(clients[0]).isEmpty)
        #expect(try self.written(clients[1]).first?.contains("data: 2") == true)
        #expect(try self.written(clients[2]).first?.contains("data: 2") == true)
        #expect(hub.count == 2)
        for client in clients { _ = try? client.channel.finish() }
        try await group.shutdownGracefully()
    }

    /// A channel's list holds one stream inline and many in an array: streams that join
    /// and leave in any order, through one, many and back, leave exactly the others
    /// attached, each getting the channel's events once.
    @Test func streamsLeavingInAnyOrderLeaveExactlyTheOthers() async throws {
        let (node, group) = try await TestNode.context()
        let loop = EmbeddedEventLoop()
        let hub = LocalHub(eventLoop: loop)
        let clients = try self.clients(Array(repeating: ["t"], count: 5), node: node, loop: loop)
        for client in clients {
            hub.add(client.stream)
            hub.apply([.attach(client.stream.id, client.stream.channels.map { _ in Events.position(0) })])
            _ = try self.written(client)
        }
        var present = Array(clients.indices)
        var n = 1
        for leaving in [2, 0, 4, 1] {
            hub.remove(clients[leaving].stream)
            present.removeAll { $0 == leaving }
            hub.apply([self.event(n, "t")])
            for (index, client) in clients.enumerated() {
                let writes = try self.written(client)
                if present.contains(index) {
                    #expect(writes.count == 1 && writes[0].contains("data: \(n)"), "client \(index): \(writes)")
                } else {
                    #expect(writes.isEmpty, "client \(index) left but got \(writes)")
                }
            }
            n += 1
        }
        // The last one leaves: nobody is on the channel, and nothing is written.
        hub.remove(clients[3].stream)
        hub.apply([self.event(n, "t")])
        for client in clients { #expect(try self.written(client).isEmpty) }
        try await group.shutdownGracefully()
    }

    @Test func aBurstOnOneChannelIsOneWritePerStream() async throws {
        let (node, group) = try await TestNode.context()
        let loop = EmbeddedEventLoop()
        let hub = LocalHub(eventLoop: loop)
        let clients = try self.clients([["broadcast"], ["broadcast"]], node: node, loop: loop)
        for client in clients {
            hub.add(client.stream)
            hub.apply([.attach(client.stream.id, [Events.position(0)])])
            _ = try self.written(client)
        }
        hub.apply((1...50).map { self.event($0, "broadcast") })
        for client in clients {
            let writes = try self.written(client)
            #expect(writes.count == 1)
            #expect(writes.first?.components(separatedBy: "\n\n").count == 51)
        }
        for client in clients { _ = try? client.channel.finish() }
        try await group.shutdownGracefully()
    }

    @Test func aRepeatInsideARunIsDroppedAndTheRestStillDelivered() async throws {
        let (node, group) = try await TestNode.context()
        let loop = EmbeddedEventLoop()
        let hub = LocalHub(eventLoop: loop)
        let clients = try self.clients([["a"]], node: node, loop: loop)
        hub.add(clients[0].stream)
        hub.apply([.attach(clients[0].stream.id, [.zero])])
        _ = try self.written(clients[0])
        // 1 and 2 follow on; the repeated 2 leaves the one-pass path, 3 is still written.
        hub.apply([self.event(1, "a"), self.event(2, "a"), self.event(2, "a"), self.event(3, "a")])
        let frames = try self.written(clients[0]).joined().components(separatedBy: "\n\n").filter { !$0.isEmpty }
        #expect(frames.map { $0.split(separator: "\n").last.map(String.init) } == ["data: 1", "data: 2", "data: 3"])
        let positions = frames.compactMap { frame -> StreamPosition? in
            guard let id = frame.split(separator: "\n").first(where: { $0.hasPrefix("id: ") }) else { return nil }
            return Cursor.decode(String(id.dropFirst(4)))?[Cursor.tag("a")]
        }
        #expect(positions == [1, 2, 3].map { Events.position($0) })
        for client in clients { _ = try? client.channel.finish() }
        try await group.shutdownGracefully()
    }

    @Test func interleavedChannelsReachAStreamInTheBatchOrder() async throws {
        let (node, group) = try await TestNode.context()
        let loop = EmbeddedEventLoop()
        let hub = LocalHub(eventLoop: loop)
        let clients = try self.clients([["a", "b", "broadcast"], ["b"]], node: node, loop: loop)
        for client in clients {
            hub.add(client.stream)
            hub.apply([.attach(client.stream.id, client.stream.channels.map { _ in .zero })])
            _ = try self.written(client)
        }
        // Runs of one channel (a a, b, a, broadcast, b b) inside one batch.
        hub.apply([
            .event(Events.event(1, channel: "a")), .event(Events.event(2, channel: "a")),
            .event(Events.event(1, channel: "b")), .event(Events.event(3, channel: "a")),
            .event(Events.event(1, channel: "broadcast")), .event(Events.event(2, channel: "b")),
            .event(Events.event(3, channel: "b")),
        ])
        let first = try self.written(clients[0])
        #expect(first.count == 1)
        let frames = first.joined().components(separatedBy: "\n\n").filter { !$0.isEmpty }
        #expect(
            frames.map { $0.split(separator: "\n").last.map(String.init) } == [
                "data: 1", "data: 2", "data: 1", "data: 3", "data: 1", "data: 2", "data: 3",
            ]
        )
        // Each id is the cursor after its own event: channel a's position after each frame.
        let aPositions = frames.compactMap { frame -> StreamPosition? in
            guard let id = frame.split(separator: "\n").first(where: { $0.hasPrefix("id: ") }) else { return nil }
            return Cursor.decode(String(id.dropFirst(4)))?[Cursor.tag("a")]
        }
        #expect(aPositions == [1, 2, 2, 3, 3, 3, 3].map { Events.position($0) })
        let second = try self.written(clients[1]).joined()
        #expect(second.components(separatedBy: "data: ").count == 4)
        for client in clients { _ = try? client.channel.finish() }
        try await group.shutdownGracefully()
    }
}

/// The loop's pool of write buffers.
@Suite struct WriteBufferPoolTests {
    @Test func keepsOnlyBuffersNothingElseHoldsWithinItsBounds() {
        var pool = WriteBufferPool(limit: 2, maximumCapacity: 1_024)
        var written = pool.take(capacity: 100)
        written.writeString("frame")
        pool.recycle(&written)
        #expect(pool.count == 1)
        // Taken again: empty, with its room.
        let again = pool.take(capacity: 10)
        #expect(again.readableBytes == 0 && again.capacity >= 100)

        // A buffer the socket still holds (another reference) is not kept.
        var held = ByteBufferAllocator().buffer(capacity: 64)
        held.writeString("queued")
        let socketCopy = held
        pool.recycle(&held)
        #expect(pool.count == 0)
        #expect(String(buffer: socketCopy) == "queued")

        // Nor one bigger than the bound, nor more than the limit.
        var big = ByteBufferAllocator().buffer(capacity: 4_096)
        pool.recycle(&big)
        #expect(pool.count == 0)
        for _ in 0..<3 {
            var buffer = ByteBufferAllocator().buffer(capacity: 64)
            pool.recycle(&buffer)
        }
        #expect(pool.count == 2)
    }
}
