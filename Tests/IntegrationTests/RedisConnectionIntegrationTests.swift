import Foundation
import HiredisNIO
import Logging
import NIOCore
import NIOPosix
import Testing

@Suite(.enabled(if: RedisServerProcess.enabled), .timeLimit(.minutes(2)))
struct RedisConnectionIntegrationTests {
    let logger = Logger(label: "test")
    var loop: any EventLoop { MultiThreadedEventLoopGroup.singleton.next() }

    private func connect(_ server: RedisServerProcess, url: String? = nil) async throws -> RedisConnection {
        let configuration = try url.map { try RedisConfiguration(url: $0) } ?? server.configuration
        return try await RedisConnection.connect(
            configuration: configuration,
            eventLoop: self.loop,
            logger: self.logger
        )
    }

    @Test func setAndGetEveryByteValue() async throws {
        let server = try await RedisServerProcess()
        defer { server.stop() }
        let connection = try await self.connect(server)
        let key = "bytes:\(UUID())"
        let value = (0...255).map { UInt8($0) } + (0...255).reversed().map { UInt8($0) }
        #expect(try await connection.send("SET", RESPArgument(key), RESPArgument(bytes: value)) == .simpleString("OK"))
        let reply = try await connection.send("GET", RESPArgument(key))
        #expect(reply.bytes.map { Array($0.readableBytesView) } == value)
        #expect(try await connection.send("GET", RESPArgument("missing:\(UUID().uuidString)")).isNull)
        await connection.close()
    }

    @Test func tenThousandPipelinedIncrementsArriveInOrder() async throws {
        let server = try await RedisServerProcess()
        defer { server.stop() }
        let connection = try await self.connect(server)
        let key = RESPArgument("counter:\(UUID())")
        let futures = (0..<10_000).map { _ in connection.sendFuture("INCR", arguments: [key]) }
        var expected: Int64 = 1
        for future in futures {
            #expect(try await future.get() == .integer(expected))
            expected += 1
        }
        let replies = try await connection.pipeline(
            [("INCR", [key]), ("LPUSH", [key, "x"]), ("GET", [key])]
        )
        #expect(replies[0] == .integer(10_001))
        #expect(replies[1].string == nil)
        #expect(replies[2].int == 10_001)
        await connection.close()
    }

    @Test func anErrorReplyThrowsAndTheConnectionKeepsWorking() async throws {
        let server = try await RedisServerProcess()
        defer { server.stop() }
        let connection = try await self.connect(server)
        let key = RESPArgument("string:\(UUID())")
        _ = try await connection.send("SET", key, "text")
        do {
            _ = try await connection.send("LPUSH", key, "item")
            Issue.record("LPUSH on a string did not throw")
        } catch let error as RedisClientError {
            #expect(error.code == .serverError)
            #expect(error.message.hasPrefix("WRONGTYPE"))
        }
        #expect(try await connection.send("PING") == .simpleString("PONG"))
        #expect(try await connection.send("GET", key).string == "text")
        await connection.close()
    }

    @Test func killingTheServerFailsPendingCommandsPromptly() async throws {
        let server = try await RedisServerProcess()
        defer { server.stop() }
        let configuration = RedisConfiguration(host: "127.0.0.1", port: server.port, commandTimeout: nil)
        let connection = try await RedisConnection.connect(
            configuration: configuration,
            eventLoop: self.loop,
            logger: self.logger
        )
        // BLPOP with no timeout blocks server-side; everything behind it waits too.
        let blocked = connection.sendFuture("BLPOP", arguments: [RESPArgument("never:\(UUID())"), 0])
        let queued = (0..<100).map { _ in connection.sendFuture("PING", arguments: []) }
        server.kill()
        for future in [blocked] + queued {
            try await withDeadline("a pending command to fail") {
                do {
                    _ = try await future.get()
                    Issue.record("a pending command succeeded after the server died")
                } catch let error as RedisClientError {
                    #expect(error.code == .connectionClosed)
                }
            }
        }
        #expect(!connection.isActive)
        do {
            _ = try await connection.send("PING")
            Issue.record("a command on a dead connection succeeded")
        } catch let error as RedisClientError {
            #expect(error.code == .connectionClosed)
        }
    }

    @Test func aCommandWithoutReplyTimesOut() async throws {
        let server = try await RedisServerProcess()
        defer { server.stop() }
        let configuration = RedisConfiguration(host: "127.0.0.1", port: server.port, commandTimeout: .milliseconds(200))
        let connection = try await RedisConnection.connect(
            configuration: configuration,
            eventLoop: self.loop,
            logger: self.logger
        )
        do {
            _ = try await connection.send("BLPOP", RESPArgument("never:\(UUID())"), 0)
            Issue.record("BLPOP returned")
        } catch let error as RedisClientError {
            #expect(error.code == .commandTimeout)
        }
        try await withDeadline("the timed-out connection to close") { await connection.waitUntilClosed() }
        #expect(!connection.isActive)
    }

    @Test func authenticatesAndSelectsTheDatabaseFromTheURL() async throws {
        let server = try await RedisServerProcess(arguments: ["--requirepass", "s3cret"])
        defer { server.stop() }
        do {
            _ = try await self.connect(server, url: "redis://:wrong@127.0.0.1:\(server.port)")
            Issue.record("a wrong password was accepted")
        } catch let error as RedisClientError {
            #expect(error.code == .serverError)
        }
        let key = RESPArgument("db:\(UUID())")
        let db3 = try await self.connect(server, url: "redis://:s3cret@127.0.0.1:\(server.port)/3")
        _ = try await db3.send("SET", key, "in three")
        let db0 = try await self.connect(server, url: "redis://:s3cret@127.0.0.1:\(server.port)/0")
        #expect(try await db0.send("GET", key).isNull)
        #expect(try await db3.send("GET", key).string == "in three")

        _ = try await db0.send("ACL", "SETUSER", "alice", "on", ">wonder land", "~*", "+@all")
        let alice = try await self.connect(server, url: "redis://alice:wonder%20land@127.0.0.1:\(server.port)/3")
        #expect(try await alice.send("ACL", "WHOAMI").string == "alice")
        #expect(try await alice.send("GET", key).string == "in three")
        for connection in [db3, db0, alice] { await connection.close() }
    }

    @Test func connectingToAClosedPortFailsWithAClearError() async throws {
        let (port, release) = try RedisServerProcess.closedPort()
        defer { release() }
        do {
            _ = try await RedisConnection.connect(
                configuration: RedisConfiguration(host: "127.0.0.1", port: port),
                eventLoop: self.loop,
                logger: self.logger
            )
            Issue.record("connected to a closed port")
        } catch let error as RedisClientError {
            #expect(error.code == .connectionClosed)
            #expect(error.message.contains("\(port)"))
        }
    }

    /// Our slot of a key is the one a cluster-enabled server computes (`CLUSTER KEYSLOT`),
    /// for plain keys, Fanfare's names and the hash-tag corner cases.
    @Test func slotsAreTheServersSlots() async throws {
        let server = try await RedisServerProcess(arguments: [
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
        ])
        defer { server.stop() }
        let connection = try await self.connect(server)
        var keys = [
            "", "a", "foo", "bar", "{", "}", "{}", "{}x", "x{}", "foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}", "é",
        ]
        keys += (0..<200).map { "fanfare:h:{channel-\($0)}" } + (0..<200).map { "key:\($0 * 7919)" }
        for key in keys {
            let slot = try await connection.send("CLUSTER", "KEYSLOT", RESPArgument(key)).int
            #expect(slot == Int64(RedisClusterSlot.of(key)), "\(key)")
        }
        await connection.close()
    }
}
