import HiredisNIO
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import Fanfare

extension RedisFunctionsIntegrationTests {
    /// A final publish ends its channel: stored with field f, its message marked ` f`, the
    /// read says the channel is final, and later publishes (single or batch) are refused
    /// while the history stays. A retry of the final publish with its key is still a duplicate.
    @Test func aFinalPublishEndsTheChannelAndLaterPublishesAreRefused() async throws {
        let server = try await RedisServerProcess()
        defer { server.stop() }
        let connection = try await self.connect(server, policy: Self.keeping(100))
        let history = self.names.history("run-1")
        let key = self.names.idempotency("run-1", key: "done")
        let first = try #require(try await self.call(connection, "publish", keys: [history], ["token", "a"]).array)
        let start = try #require(first.first?.string)
        // Not final yet.
        #expect(try await self.call(connection, "read", keys: [history], ["0-0", "10"]).array?[3].int == 0)
        let final = try #require(
            try await self.call(connection, "publish", keys: [history, key], ["complete", "{}", "final"]).array
        )
        let end = try #require(final.first?.string)

        let page = try #require(try await self.call(connection, "read", keys: [history], ["0-0", "10"]).array)
        #expect(page[0].string == "ok")
        #expect(page[1].string == end)
        #expect(page[3].int == 1)
        let entries = try #require(page[2].array)
        #expect(entries.compactMap { $0.array?.first?.string } == [start, end])
        #expect(
            entries.last?.array?.last?.array?.map(\.string) == [
                "p", start, "b", "event: complete\ndata: {}\n\n", "f", "1",
            ]
        )
        // Read from the head itself: nothing more, and final.
        #expect(try await self.call(connection, "read", keys: [history], [end, "10"]).array?[3].int == 1)

        // Refused, single and batch, and nothing was added.
        for (function, arguments) in [("publish", ["token", "b"]), ("publish_batch", ["token", "b", "token", "c"])] {
            let error = await #expect(throws: RedisClientError.self, "\(function)") {
                try await self.call(connection, function, keys: [history], arguments)
            }
            #expect(error?.message.hasPrefix("ERR fanfare: finished: ") == true, "\(String(describing: error))")
        }
        #expect(try await connection.send("XLEN", RESPArgument(history)).int == 2)
        // The final publish retried with its key answers its position again.
        let retry = try await self.call(connection, "publish", keys: [history, key], ["complete", "{}", "final"])
        #expect(retry.array?.first?.string == end)
        #expect(retry.array?.last == .integer(1))
        // Anything but the word final after the data is refused, and so is a final event
        // on a channel that never ends.
        let other = self.names.history("run-2")
        for arguments in [["e", "d", "yes"], ["e", "d", "final", "x"]] {
            await #expect(throws: RedisClientError.self, "\(arguments)") {
                try await self.call(connection, "publish", keys: [other], arguments)
            }
        }
        for channel in ["broadcast", "client:alice", "user:bob"] {
            let error = await #expect(throws: RedisClientError.self, "\(channel)") {
                try await self.call(connection, "publish", keys: [self.names.history(channel)], ["e", "d", "final"])
            }
            #expect(error?.message.contains("never end") == true)
        }
        await connection.close()
    }

    /// A batch that ends with `final` makes its last event final; the subscriber sees the
    /// mark on that message only, and the node reads it as a final event.
    @Test func aBatchEndingWithFinalMarksItsLastEvent() async throws {
        let server = try await RedisServerProcess()
        defer { server.stop() }
        let connection = try await self.connect(server, policy: Self.keeping(100))
        let (subscriber, stream) = RedisSubscriber.makeWithStream(
            configuration: .init(redis: server.configuration),
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
            logger: Logger(label: "test")
        )
        subscriber.start()
        try await subscriber.subscribe([self.names.pubsubChannel("run-3")])
        let history = self.names.history("run-3")
        let reply = try #require(
            try await self.call(connection, "publish_batch", keys: [history], ["token", "1", "complete", "2", "final"])
                .array
        )
        #expect(reply.count == 3)
        let payloads = try await withDeadline("the two messages") {
            var payloads: [ByteBuffer] = []
            for await event in stream {
                if case .message(_, let payload) = event { payloads.append(payload) }
                if payloads.count == 2 { break }
            }
            return payloads
        }
        let events = payloads.compactMap { RedisEventBus.event(channel: "run-3", payload: $0) }
        #expect(events.map(\.isFinal) == [false, true])
        #expect(events.map(\.position.description) == reply.dropFirst().compactMap(\.string))
        #expect(events.last.map { String(buffer: $0.body) } == "event: complete\ndata: 2\n\n")
        #expect(try await self.call(connection, "read", keys: [history], ["0-0", "10"]).array?[3].int == 1)
        await subscriber.close()
        await connection.close()
    }
}
