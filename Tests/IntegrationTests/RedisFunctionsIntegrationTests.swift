import Foundation
import HiredisNIO
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import Fanfare

/// The function library in `Resources/fanfare.lua`, exactly as a node fills it in and
/// loads it, called in a real Redis.
@Suite(.enabled(if: RedisServerProcess.enabled), .timeLimit(.minutes(1)))
struct RedisFunctionsIntegrationTests {
    let names = RedisNames(prefix: "lua\(UInt32.random(in: 0...UInt32.max))")
    let policy = HistoryPolicy(
        maxLength: 3,
        maxAgeMilliseconds: 0,
        idleExpiryMilliseconds: 60_000,
        idempotencyWindowMilliseconds: 60_000
    )

    /// A connection to `server`, with the library loaded under `policy` (the suite's own
    /// short history by default).
    func connect(_ server: RedisServerProcess, policy: HistoryPolicy? = nil) async throws -> RedisConnection {
        let connection = try await RedisConnection.connect(
            configuration: server.configuration,
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
            logger: Logger(label: "test")
        )
        let loaded = try await connection.send(
            "FUNCTION",
            "LOAD",
            "REPLACE",
            RESPArgument(RedisFunctions.source(names: self.names, policy: policy ?? self.policy))
        )
        #expect(loaded.string == self.names.library)
        return connection
    }

    /// A history policy that keeps `maxLength` events (no age limit).
    static func keeping(_ maxLength: Int, idleMilliseconds: Int64 = 60_000) -> HistoryPolicy {
        HistoryPolicy(
            maxLength: maxLength,
            maxAgeMilliseconds: 0,
            idleExpiryMilliseconds: idleMilliseconds,
            idempotencyWindowMilliseconds: 60_000
        )
    }

    func call(
        _ connection: RedisConnection,
        _ function: String,
        keys: [String],
        _ arguments: [String] = []
    ) async throws -> RESPValue {
        try await connection.send(
            "FCALL",
            arguments: [RESPArgument(self.names.function(function)), RESPArgument(keys.count)]
                + keys.map { RESPArgument($0) } + arguments.map { RESPArgument($0) }
        )
    }

    @Test func theLibraryHasEveryFunctionAndItsPolicy() async throws {
        let server = try await RedisServerProcess()
        defer { server.stop() }
        let connection = try await self.connect(server)
        let list = try await connection.send("FUNCTION", "LIST", "LIBRARYNAME", RESPArgument(self.names.library))
        // [library_name, <name>, engine, LUA, functions, [[name, <name>, …], …]]
        let library = try #require(list.array?.first?.array)
        let functions = try #require(library.last?.array).compactMap { $0.array?[1].string }
        #expect(
            Set(functions)
                == Set(
                    [
                        "publish", "publish_batch", "head", "read", "policy", "heartbeat", "leave", "cluster", "client",
                        "connections", "disconnect", "disconnected", "disconnects", "user_acquire", "user_renew",
                        "user_release", "user_places", "presence_renew", "presence_leave", "presence_sweep",
                        "presence_users", "presence_index", "presence_unindex",
                    ]
                    .map(self.names.function)
                )
        )
        let policy = try await self.call(connection, "policy", keys: [])
        #expect(policy.array?.first?.int == Int64(RedisFunctions.version))
        #expect(policy.array?.last?.string == self.policy.description)
        await connection.close()
    }

    @Test func publishingChainsEachEventToTheOneBeforeIt() async throws {
        let server = try await RedisServerProcess()
        defer { server.stop() }
        let connection = try await self.connect(server)
        let history = self.names.history("orders")
        #expect(try await self.call(connection, "head", keys: [history]).string == "0-0")

        var positions: [String] = []
        for index in 0..<5 {
            let reply = try await self.call(
                connection,
                "publish",
                keys: [history],
                ["created", "line \(index)\r\nend"]
            )
            positions.append(try #require(reply.array?.first?.string))
            #expect(reply.array?.dropFirst().map(\.int) == [0, 0])
        }
        #expect(try await self.call(connection, "head", keys: [history]).string == positions.last)

        // The newest events, each with its predecessor and the body encoded once.
        let recent = try await self.call(connection, "read", keys: [history], [positions[2], "10"])
        #expect(recent.array?.first?.string == "ok")
        let entries = try #require(recent.array?[2].array)
        #expect(entries.compactMap { $0.array?.first?.string } == [positions[3], positions[4]])
        let fields = try #require(entries.first?.array?.last?.array).map(\.string)
        #expect(fields == ["p", positions[2], "b", "event: created\ndata: line 3\ndata: end\n\n"])

        // MAXLEN 3 (approximately) trimmed the first ones: a read after position 0 finds
        // that the event after it is gone. The newest position has nothing after it.
        _ = try await connection.send("XTRIM", RESPArgument(history), "MAXLEN", "2")
        let old = try await self.call(connection, "read", keys: [history], [positions[0], "10"])
        #expect(old.array?.first?.string == "trimmed")
        #expect(old.array?[1].string == positions[4])
        let newest = try await self.call(connection, "read", keys: [history], [positions[4], "10"])
        #expect(newest.array?.first?.string == "ok" && newest.array?[2].array?.isEmpty == true)
        // A position the channel never had, or no position at all.
        let ahead = try await self.call(connection, "read", keys: [history], ["99999999999999-0", "10"])
        #expect(ahead.array?.first?.string == "unknown")
        let garbage = try await self.call(connection, "read", keys: [history], ["not-an-id", "10"])
        #expect(garbage.array?.first?.string == "unknown")
        // A channel whose history is gone, and one that never had any.
        let missing = self.names.history("nothing")
        #expect(
            try await self.call(connection, "read", keys: [missing], [positions[0], "10"]).array?.first?.string
                == "gone"
        )
        #expect(try await self.call(connection, "read", keys: [missing], ["0-0", "10"]).array?.first?.string == "ok")
        // Every history expires when idle.
        #expect(try await connection.send("PTTL", RESPArgument(history)).int ?? 0 > 0)
        await connection.close()
    }

    @Test func aBatchOfOneChannelChainsItsEventsAndPublishesEachInOrder() async throws {
        let server = try await RedisServerProcess()
        defer { server.stop() }
        let connection = try await self.connect(server)
        let history = self.names.history("tokens")
        let first = try #require(try await self.call(connection, "publish", keys: [history], ["token", "A"]).array)
        let before = try #require(first.first?.string)

        let reply = try #require(
            try await self.call(connection, "publish_batch", keys: [history], ["token", "B", "", "C", "done", "x\ny"])
                .array
        )
        #expect(reply.first?.int == 0)  // no node subscribed
        let positions = reply.dropFirst().compactMap(\.string)
        #expect(positions.count == 3)
        #expect(try await self.call(connection, "head", keys: [history]).string == positions.last)
        let page = try await self.call(connection, "read", keys: [history], [before, "10"])
        #expect(page.array?.first?.string == "ok")
        let entries = try #require(page.array?[2].array)
        #expect(entries.compactMap { $0.array?.first?.string } == positions)
        let fields = entries.compactMap { $0.array?.last?.array?.map(\.string) }
        #expect(
            fields == [
                ["p", before, "b", "event: token\ndata: B\n\n"], ["p", positions[0], "b", "data: C\n\n"],
                ["p", positions[1], "b", "event: done\ndata: x\ndata: y\n\n"],
            ]
        )

        // A bad event name anywhere publishes none of the batch; so does an odd count.
        for arguments in [["token", "D", "__reset", "E"], ["token"], []] {
            await #expect(throws: RedisClientError.self) {
                try await self.call(connection, "publish_batch", keys: [history], arguments)
            }
        }
        await #expect(throws: RedisClientError.self) {
            try await self.call(connection, "publish_batch", keys: ["elsewhere"], ["token", "D"])
        }
        #expect(try await self.call(connection, "head", keys: [history]).string == positions.last)
        #expect(try await connection.send("PTTL", RESPArgument(history)).int ?? 0 > 0)
        await connection.close()
    }

    @Test func theHeadsOfManyChannelsComeInOneBatchEvenAfterTheLibraryWasLost() async throws {
        let server = try await RedisServerProcess()
        defer { server.stop() }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let bus = RedisEventBus(
            configuration: server.configuration,
            names: self.names,
            policy: self.policy,
            eventLoop: loop,
            logger: Logger(label: "test")
        )
        let first = try await bus.publish(PublishRequest(channel: "a", event: "x", data: "1"), on: loop)
        let second = try await bus.publish(PublishRequest(channel: "a", event: "x", data: "2"), on: loop)
        let other = try await bus.publish(PublishRequest(channel: "b", event: "x", data: "1"), on: loop)
        #expect(first.position < second.position)
        let channels = ["a", "never", "b", "a"]
        #expect(
            try await bus.heads(of: channels, on: loop) == [second.position, .zero, other.position, second.position]
        )
        #expect(try await bus.heads(of: [], on: loop) == [])

        // Redis lost the library (a restart without it): the batch loads it and answers.
        let admin = try await self.connect(server)
        _ = try await admin.send("FUNCTION", "FLUSH")
        #expect(
            try await bus.heads(of: channels, on: loop) == [second.position, .zero, other.position, second.position]
        )
        await admin.close()
        await bus.shutdown()
    }

    @Test func aNodeWithOtherHistorySettingsSaysSoAndKeepsTheClustersPolicy() async throws {
        let server = try await RedisServerProcess()
        defer { server.stop() }
        let first = try await NodeProcess(id: "policy-a", redis: server.url, arguments: ["--history-size", "300"])
        defer { first.stop() }
        let second = try await NodeProcess(id: "policy-b", redis: server.url, arguments: ["--history-size", "50"])
        defer { second.stop() }
        #expect(second.logText().contains("fanfare.history.policy.differs"), "\(second.logText())")
        #expect(!first.logText().contains("fanfare.history.policy.differs"))
        // The library the cluster loaded first stays: publishes through either node keep
        // its policy.
        let connection = try await RedisConnection.connect(
            configuration: server.configuration,
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
            logger: Logger(label: "test")
        )
        let policy = try await connection.send("FCALL", "fanfare_policy", "0")
        #expect(policy.array?.last?.string?.hasPrefix("maxlen=300 ") == true, "\(policy)")
        await connection.close()
    }

    @Test func anIdempotencyKeyPublishesOnce() async throws {
        let server = try await RedisServerProcess()
        defer { server.stop() }
        let connection = try await self.connect(server)
        let history = self.names.history("jobs")
        let key = self.names.idempotency("jobs", key: "job-7")
        let first = try await self.call(connection, "publish", keys: [history, key], ["progress", "50"])
        let again = try await self.call(connection, "publish", keys: [history, key], ["progress", "50"])
        #expect(first.array?.first?.string == again.array?.first?.string)
        #expect(first.array?.last?.int == 0)
        #expect(again.array?.last?.int == 1)
        #expect(try await connection.send("XLEN", RESPArgument(history)).int == 1)
        // A key of another channel's slot is refused.
        await #expect(throws: RedisClientError.self) {
            try await self.call(
                connection,
                "publish",
                keys: [history, self.names.idempotency("other", key: "k")],
                ["e", "d"]
            )
        }
        await connection.close()
    }

    @Test func badPublishesAreRefusedWithASentence() async throws {
        let server = try await RedisServerProcess()
        defer { server.stop() }
        let connection = try await self.connect(server)
        for (keys, arguments, message) in [
            ([self.names.history("orders")], ["__x", "{}"], "reserved"),
            ([self.names.history("orders")], ["a\nb", "{}"], "CR, LF or NUL"),
            (["\(self.names.prefix):history"], ["e", "{}"], "the key must be"),
            ([self.names.history("bad channel")], ["e", "{}"], "the key must be"),
        ] {
            let error = await #expect(throws: RedisClientError.self) {
                try await self.call(connection, "publish", keys: keys, arguments)
            }
            #expect(error?.message.contains(message) == true, "\(String(describing: error))")
        }
        await connection.close()
    }

    @Test func theRegistryFunctionsCountEveryLiveNode() async throws {
        let server = try await RedisServerProcess()
        defer { server.stop() }
        let connection = try await self.connect(server)
        let names = self.names
        let row =
            #"{"id":"n1","address":"127.0.0.1:1","version":"t","startedAt":1,"connections":2,"clients":1,"lastSeen":1}"#
        _ = try await self.call(
            connection,
            "heartbeat",
            keys: [names.nodes, names.nodeInfo("n1"), names.nodeCounts("n1")],
            ["n1", "5000", row, "1", "client:alice", "2", "orders", "1"]
        )
        let cluster = try await self.call(connection, "cluster", keys: [names.nodes])
        #expect(cluster.array?.first?.array?.first?.string == row)
        #expect(cluster.array?.last?.array?.first?.string == "alice")
        let client = try await self.call(connection, "client", keys: [names.nodes], ["alice"])
        #expect(client.array?.first?.string == "n1" && client.array?.last?.int == 2)
        #expect(try await self.call(connection, "connections", keys: [names.nodes], ["orders"]).int == 1)

        // Later heartbeats carry only what changed: nothing ("0"), or changes ("2", where 0
        // removes a channel); the rest of the counts stay as they were.
        let keys = [names.nodes, names.nodeInfo("n1"), names.nodeCounts("n1")]
        _ = try await self.call(connection, "heartbeat", keys: keys, ["n1", "5000", row, "0"])
        #expect(try await self.call(connection, "connections", keys: [names.nodes], ["orders"]).int == 1)
        _ = try await self.call(
            connection,
            "heartbeat",
            keys: keys,
            ["n1", "5000", row, "2", "orders", "0", "client:bob", "1", "alerts", "3"]
        )
        let counts = try await connection.send("HGETALL", RESPArgument(names.nodeCounts("n1")))
        var byChannel: [String: String] = [:]
        let fields = counts.array?.compactMap(\.string) ?? []
        for index in stride(from: 0, to: fields.count - 1, by: 2) { byChannel[fields[index]] = fields[index + 1] }
        #expect(byChannel == ["client:alice": "2", "client:bob": "1", "alerts": "3"])
        #expect(try await self.call(connection, "connections", keys: [names.nodes], ["orders"]).int == 0)
        #expect(try await self.call(connection, "connections", keys: [names.nodes], ["alerts"]).int == 3)
        _ = try await self.call(
            connection,
            "leave",
            keys: [names.nodes, names.nodeInfo("n1"), names.nodeCounts("n1")],
            ["n1"]
        )
        #expect(try await self.call(connection, "cluster", keys: [names.nodes]).array?.first?.array?.isEmpty == true)
        #expect(try await self.call(connection, "connections", keys: [names.nodes], ["orders"]).int == 0)
        await connection.close()
    }

    /// A retry that publishes nothing still writes (its key, again): `WAIT` after it must
    /// cover the first publish, whatever the server counts as the connection's last write.
    @Test func aDuplicatePublishWritesSoThatWaitCoversTheFirstOne() async throws {
        let primary = try await RedisServerProcess.primary()
        defer { primary.stop() }
        let replica = try await RedisServerProcess.replica(of: primary)
        defer { replica.stop() }
        let connection = try await self.connect(primary)
        let history = self.names.history("jobs")
        let key = self.names.idempotency("jobs", key: "job-9")
        _ = try await self.call(connection, "publish", keys: [history, key], ["progress", "1"])
        let before = try await Self.replicationOffset(connection)
        let again = try await self.call(connection, "publish", keys: [history, key], ["progress", "1"])
        #expect(again.array?.last?.int == 1)
        #expect(try await Self.replicationOffset(connection) > before, "the duplicate path wrote nothing")
        // The key keeps its expiry.
        let ttl = try await connection.send("PTTL", RESPArgument(key)).int ?? -1
        #expect(ttl > 0 && ttl <= 60_000)
        await connection.close()
    }

    private static func replicationOffset(_ connection: RedisConnection) async throws -> Int {
        let info = try await connection.send("INFO", "replication").string ?? ""
        let line = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("master_repl_offset:") } ?? ""
        return Int(line.dropFirst("master_repl_offset:".count)) ?? -1
    }

    /// Every function checks the shape of its keys, so a caller allowed to call functions
    /// cannot point them at other keys; reads clamp what they are asked for.
    @Test func everyFunctionRefusesKeysThatAreNotItsOwn() async throws {
        let server = try await RedisServerProcess()
        defer { server.stop() }
        let connection = try await self.connect(server)
        let names = self.names
        let other = names.history("orders")
        _ = try await self.call(connection, "publish", keys: [other], ["e", "kept"])
        let row = #"{"id":"n1"}"#
        for (function, keys, arguments) in [
            ("head", ["somebody:else"], []),
            ("read", ["somebody:else"], ["0-0", "10"]),
            ("leave", [names.nodes, other, names.nodeCounts("n1")], ["n1"]),
            ("leave", [names.nodes, names.nodeInfo("n2"), names.nodeCounts("n2")], ["n1"]),
            ("heartbeat", [names.nodes, other, names.nodeCounts("n1")], ["n1", "5000", row, "0"]),
            ("heartbeat", [other, names.nodeInfo("n1"), names.nodeCounts("n1")], ["n1", "5000", row, "0"]),
            ("cluster", [other], []),
            ("client", [other], ["alice"]),
            ("connections", [other], ["orders"]),
        ] {
            let error = await #expect(throws: RedisClientError.self, "\(function) \(keys)") {
                try await self.call(connection, function, keys: keys, arguments)
            }
            #expect(error?.message.contains("ERR fanfare: the key") == true, "\(String(describing: error))")
        }
        // The channel's history is untouched.
        #expect(try await connection.send("XLEN", RESPArgument(other)).int == 1)
        await connection.close()
        // A huge COUNT is clamped to 1000, a page stops before the event that passes its
        // bytes, and the first event always comes (a history that keeps them all).
        let longer = try await self.connect(server, policy: Self.keeping(5_000))
        let long = names.history("long")
        // In batches of 100: twelve calls, not 1,200 round trips on a loaded machine.
        for batch in 0..<12 {
            let events = (batch * 100..<(batch + 1) * 100).flatMap { ["e", "\($0)"] }
            _ = try await self.call(longer, "publish_batch", keys: [long], events)
        }
        let clamped = try await self.call(longer, "read", keys: [long], ["0-0", "1000000000"])
        #expect(clamped.array?[2].array?.count == 1_000)
        // Bodies are "event: e\ndata: <n>\n\n" (17 to 20 bytes): 60 bytes hold 3.
        let small = try await self.call(longer, "read", keys: [long], ["0-0", "100", "60"])
        #expect(small.array?[2].array?.count == 3)
        let one = try await self.call(longer, "read", keys: [long], ["0-0", "100", "1"])
        #expect(one.array?[2].array?.count == 1)
        await longer.close()
    }
}
