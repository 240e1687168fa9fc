import Foundation
import HiredisNIO
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import Fanfare

/// The function library in `Resources/fanfare.lua`, exactly as embedded in the node,
/// loaded into a real Redis and called.
@Suite(.enabled(if: RedisServerProcess.enabled), .timeLimit(.minutes(1)))
struct RedisFunctionsIntegrationTests {
    @Test func theEmbeddedLibraryLoadsAndEveryFunctionAnswers() async throws {
        let server = try await RedisServerProcess()
        defer { server.stop() }
        let connection = try await RedisConnection.connect(
            configuration: server.configuration,
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
            logger: Logger(label: "test")
        )
        let loaded = try await connection.send("FUNCTION", "LOAD", "REPLACE", RESPArgument(RedisFunctions.source))
        #expect(loaded.string == RedisFunctions.libraryName)

        let list = try await connection.send(
            "FUNCTION",
            "LIST",
            "LIBRARYNAME",
            RESPArgument(RedisFunctions.libraryName)
        )
        // [library_name, fanfare, engine, LUA, functions, [[name, <name>, …], …]]
        let library = try #require(list.array?.first?.array)
        let functions = try #require(library.last?.array).compactMap { $0.array?[1].string }
        #expect(
            Set(functions) == [
                "fanfare_publish", "fanfare_replay", "fanfare_heartbeat", "fanfare_leave", "fanfare_cluster",
                "fanfare_client",
            ]
        )

        let prefix = "lua-\(UUID().uuidString.prefix(8))"
        let names = RedisNames(prefix: prefix)
        let published = try await connection.send(
            "FCALL",
            arguments: [
                "fanfare_publish", 2, RESPArgument(names.history), RESPArgument(names.nodes), "orders", "created",
                "line 1\r\nline 2", 100, RESPArgument(prefix), 0,
            ]
        )
        let id = try #require(published.array?.first?.string)
        #expect(published.array?.dropFirst().map(\.int) == [0, 0])
        let refused = await #expect(throws: RedisClientError.self) {
            try await connection.send(
                "FCALL",
                arguments: [
                    "fanfare_publish", 2, RESPArgument(names.history), RESPArgument(names.nodes), "orders", "__x", "{}",
                ]
            )
        }
        #expect(refused?.message.contains("reserved") == true)

        let replay = try await connection.send(
            "FCALL",
            arguments: ["fanfare_replay", 1, RESPArgument(names.history), "0-0", 10]
        )
        let parts = try #require(replay.array)
        #expect(parts[0].string == id && parts[1].string == id)
        let fields = try #require(parts[2].array?.first?.array?.last?.array).map(\.string)
        #expect(fields == ["c", "orders", "b", "event: created\ndata: line 1\ndata: line 2\n\n"])

        let row =
            #"{"id":"n1","address":"127.0.0.1:1","version":"t","startedAt":1,"connections":2,"clients":1,"lastSeen":1}"#
        _ = try await connection.send(
            "FCALL",
            arguments: [
                "fanfare_heartbeat", 3, RESPArgument(names.nodes), RESPArgument(names.nodeInfo("n1")),
                RESPArgument(names.nodeCounts("n1")), "n1", 5000, RESPArgument(row), "1", "client:alice", 2,
            ]
        )
        let cluster = try await connection.send(
            "FCALL",
            arguments: ["fanfare_cluster", 1, RESPArgument(names.nodes), RESPArgument(prefix)]
        )
        #expect(cluster.array?.first?.array?.first?.string == row)
        #expect(cluster.array?.last?.array?.map(\.string) == ["alice", nil])
        let client = try await connection.send(
            "FCALL",
            arguments: ["fanfare_client", 1, RESPArgument(names.nodes), RESPArgument(prefix), "alice"]
        )
        #expect(client.array?.first?.string == "n1" && client.array?.last?.int == 2)
        _ = try await connection.send(
            "FCALL",
            arguments: [
                "fanfare_leave", 3, RESPArgument(names.nodes), RESPArgument(names.nodeInfo("n1")),
                RESPArgument(names.nodeCounts("n1")), "n1",
            ]
        )
        let after = try await connection.send(
            "FCALL",
            arguments: ["fanfare_cluster", 1, RESPArgument(names.nodes), RESPArgument(prefix)]
        )
        #expect(after.array?.first?.array?.isEmpty == true)
        await connection.close()
    }
}
