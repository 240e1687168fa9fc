import Foundation
import HiredisNIO
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import Fanfare

/// The nodes' own channels, and what a publishing service's ACL lets it do.
extension RedisFunctionsIntegrationTests {
    /// The nodes' own channels (`__…`, the delivery probe) keep a short history.
    @Test func aNodesOwnChannelKeepsAShortHistory() async throws {
        let server = try await RedisServerProcess()
        defer { server.stop() }
        let connection = try await self.connect(server, policy: Self.keeping(5_000, idleMilliseconds: 600_000))
        let probe = self.names.history("__probe.node-1")
        for index in 0..<300 { _ = try await self.call(connection, "publish", keys: [probe], ["probe", "\(index)"]) }
        #expect((try await connection.send("XLEN", RESPArgument(probe)).int ?? 0) < 200)
        let ttl = try await connection.send("PTTL", RESPArgument(probe)).int ?? -1
        #expect(ttl > 0 && ttl <= 60_000)
        await connection.close()
    }

    /// The ACL the README gives a service that only publishes: it publishes (alone, with
    /// an idempotency key, in batches) and can do nothing else, neither call the registry's
    /// functions nor touch keys outside the channels' histories and idempotency keys.
    @Test func aPublishingServicesACLPublishesAndNothingElse() async throws {
        let server = try await RedisServerProcess()
        defer { server.stop() }
        let admin = try await self.connect(server)
        let prefix = self.names.prefix
        let rules = [
            "on", ">pub-secret-1", "resetkeys", "~\(prefix):h:*", "~\(prefix):i:*", "resetchannels", "&\(prefix):c:*",
            "-@all", "+fcall|\(prefix)_publish", "+fcall|\(prefix)_publish_batch", "+xrevrange", "+exists",
            "+xinfo|stream", "+xadd", "+publish", "+spublish", "+xtrim", "+pexpire", "+get", "+set",
        ]
        _ = try await admin.send("ACL", arguments: ["SETUSER", "publisher"] + rules.map { RESPArgument($0) })
        var configuration = server.configuration
        configuration.username = "publisher"
        configuration.password = "pub-secret-1"
        let publisher = try await RedisConnection.connect(
            configuration: configuration,
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
            logger: Logger(label: "test")
        )
        let history = self.names.history("orders")
        let key = self.names.idempotency("orders", key: "k1")
        #expect(try await self.call(publisher, "publish", keys: [history], ["created", "1"]).array?.count == 3)
        #expect(try await self.call(publisher, "publish", keys: [history, key], ["created", "2"]).array?.count == 3)
        #expect(
            try await self.call(publisher, "publish", keys: [history, key], ["created", "2"]).array?.last == .integer(1)
        )
        #expect(
            try await self.call(publisher, "publish_batch", keys: [history], ["a", "3", "b", "4"]).array?.count == 3
        )
        let names = self.names
        for (function, keys, arguments) in [
            ("leave", [names.nodes, names.nodeInfo("n1"), names.nodeCounts("n1")], ["n1"]),
            ("heartbeat", [names.nodes, names.nodeInfo("n1"), names.nodeCounts("n1")], ["n1", "5000", "{}", "0"]),
            ("read", [history], ["0-0", "10"]),
            ("publish", [names.nodes], ["e", "d"]),
        ] {
            await #expect(throws: RedisClientError.self, "\(function)") {
                try await self.call(publisher, function, keys: keys, arguments)
            }
        }
        await #expect(throws: RedisClientError.self) { try await publisher.send("DEL", RESPArgument(history)) }
        #expect(try await admin.send("XLEN", RESPArgument(history)).int == 4)
        await publisher.close()
        await admin.close()
    }
}
