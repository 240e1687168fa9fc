import HiredisNIO
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import Fanfare

extension RedisFunctionsIntegrationTests {
    /// A user's places: taken up to the limit, refused or the oldest ended past it (with a
    /// disconnect request naming its lease on the user's channel), renewed, given back.
    @Test func userPlacesAreCountedRefusedReplacedRenewedAndGivenBack() async throws {
        let server = try await RedisServerProcess()
        defer { server.stop() }
        let connection = try await self.connect(server)
        let key = self.names.userPlaces("una")
        func acquire(_ lease: String, _ policy: String) async throws -> [RESPValue] {
            try #require(
                try await self.call(connection, "user_acquire", keys: [key], ["2", policy, lease, "6000"]).array
            )
        }
        let first = try await acquire("lease1", "refuse")
        #expect(first.count == 2 && first[0].int == 1)
        let second = try await acquire("lease2", "refuse")
        #expect(second[0].int == 1)
        #expect(try await acquire("lease3", "refuse").map(\.int) == [0])
        // Renewing keeps both; a member that is not there and has no room is answered as gone.
        let places = [try #require(first[1].string), try #require(second[1].string)]
        let gone = try await self.call(
            connection,
            "user_renew",
            keys: [key],
            ["6000", "2"] + places + ["000000000000001 ghost"]
        )
        #expect(gone.array?.compactMap(\.string) == ["000000000000001 ghost"])
        // close-oldest: the first place goes, and its stream is asked to end.
        let (subscriber, stream) = RedisSubscriber.makeWithStream(
            configuration: .init(redis: server.configuration),
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
            logger: Logger(label: "test")
        )
        subscriber.start()
        try await subscriber.subscribe([self.names.pubsubChannel("user:una")])
        let third = try await acquire("lease3", "oldest")
        #expect(third[0].int == 1)
        #expect(third.dropFirst(2).compactMap(\.string) == ["lease1"])
        let payload = try await withDeadline("the disconnect request") {
            for await event in stream {
                if case .message(_, let payload) = event { return String(buffer: payload) }
            }
            return ""
        }
        #expect(payload == "! lease1 0 lease1\nconnection limit per user: a newer stream opened")
        let request = DisconnectRequest(channel: "user:una", message: ByteBuffer(string: payload))
        #expect(request?.lease == "lease1")
        #expect(request?.reconnect == false)
        let live = try await self.call(connection, "user_places", keys: [key])
        #expect(live.array?.count == 2)
        #expect(live.array?.compactMap(\.string).contains(places[0]) == false)
        #expect(try await self.call(connection, "user_release", keys: [key], [places[1]]).int == 1)
        #expect(try await self.call(connection, "user_places", keys: [key]).array?.count == 1)
        // A place that lapsed (here: given back behind its stream's back) is taken again while
        // there is room.
        let again = try await self.call(connection, "user_renew", keys: [key], ["6000", "2", places[1]])
        #expect(again.array?.isEmpty == true)
        #expect(try await self.call(connection, "user_places", keys: [key]).array?.count == 2)
        await subscriber.close()
        // Bad keys and arguments are refused with the usage.
        for (keys, arguments) in [
            ([self.names.history("user:una")], ["2", "refuse", "l", "6000"]),
            ([key], ["0", "refuse", "l", "6000"]),
            ([key], ["2", "sometimes", "l", "6000"]),
            ([key], ["2", "refuse", "not a lease", "6000"]),
        ] {
            await #expect(throws: RedisClientError.self) {
                try await self.call(connection, "user_acquire", keys: keys, arguments)
            }
        }
    }

    /// Presence: a user's first lease joins, its last leave leaves, lapsed leases leave when
    /// swept; the events are the presence channel's history.
    @Test func presenceJoinsLeavesAndSweeps() async throws {
        let server = try await RedisServerProcess()
        defer { server.stop() }
        let connection = try await self.connect(server, policy: Self.keeping(100))
        let keys = self.names.presence("hall")
        func events() async throws -> [String] {
            let page = try #require(try await self.call(connection, "read", keys: [keys[2]], ["0-0", "100"]).array)
            return (page[2].array ?? []).compactMap { entry -> String? in
                // [id, [p, <predecessor>, b, <body>]]
                let fields = entry.array?.last?.array ?? []
                guard let index = fields.firstIndex(where: { $0.string == "b" }), index + 1 < fields.count else {
                    return nil
                }
                return fields[index + 1].string
            }
        }
        // Ann's two streams: one join, one leave. Then Ben's short lease lapses and a sweep
        // makes him leave (nothing else can lapse meanwhile, however slow the machine).
        #expect(
            try await self.call(connection, "presence_renew", keys: keys, ["60000", "ann", "l1", "ann", "l2"]).int == 1
        )
        #expect(try await self.call(connection, "presence_leave", keys: keys, ["ann", "l1"]).int == 1)
        #expect(try await self.call(connection, "presence_leave", keys: keys, ["ann", "l2"]).int == 0)
        #expect(try await self.call(connection, "presence_renew", keys: keys, ["1000", "ben", "l3"]).int == 1)
        #expect(try await self.call(connection, "presence_users", keys: keys).array?.count == 2)
        try await Task.sleep(for: .milliseconds(1_100))
        #expect(try await self.call(connection, "presence_sweep", keys: keys).int == 0)
        #expect(try await self.call(connection, "presence_users", keys: keys).array?.isEmpty == true)
        #expect(
            try await events() == [
                "event: join\ndata: {\"user\":\"ann\",\"channel\":\"hall\"}\n\n",
                "event: leave\ndata: {\"user\":\"ann\",\"channel\":\"hall\"}\n\n",
                "event: join\ndata: {\"user\":\"ben\",\"channel\":\"hall\"}\n\n",
                "event: leave\ndata: {\"user\":\"ben\",\"channel\":\"hall\"}\n\n",
            ]
        )
        // Nobody publishes on a presence channel but the functions.
        await #expect(throws: RedisClientError.self) {
            try await self.call(connection, "publish", keys: [keys[2]], ["join", "{}"])
        }
        // Keys of another channel's presence are refused.
        await #expect(throws: RedisClientError.self) {
            try await self.call(
                connection,
                "presence_renew",
                keys: [keys[0], keys[1], self.names.history("presence:x")],
                ["6000"]
            )
        }
        // The index answers the channels to sweep to one node per interval.
        let index = [self.names.presenceIndex, self.names.presenceSweepLock]
        let due = try await self.call(connection, "presence_index", keys: index, ["node-a", "2000", "hall"])
        #expect(due.array?.compactMap(\.string) == ["hall"])
        #expect(
            try await self.call(connection, "presence_index", keys: index, ["node-b", "2000"]).array?.isEmpty == true
        )
        #expect(try await self.call(connection, "presence_unindex", keys: [index[0]], ["hall"]).int == 1)
    }
}
