import Fanfare
import Logging
import NIOCore
import Testing

/// A node's services starting and stopping: a start that cannot succeed says why (and the
/// reason is the real one, not that some part stopped), and a node runs once.
@Suite(.timeLimit(.minutes(1)))
struct NodeLifecycleTests {
    private func node(_ configure: (inout FanfareConfiguration) -> Void) async throws -> FanfareNode {
        var configuration = FanfareConfiguration(host: "127.0.0.1", port: 0, nodeID: "lifecycle", eventLoops: 1)
        configure(&configuration)
        return try await FanfareNode(
            configuration: configuration,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
    }

    /// Runs the node to its end; the error it stopped with.
    private func failure(of node: FanfareNode) async throws -> FanfareError {
        try await withDeadline("the node to give up") {
            do {
                try await node.run()
            } catch let error as FanfareError {
                return error
            }
            throw TestFailure("the node ran and stopped without an error")
        }
    }

    @Test func aTakenPortStopsTheNodeWithTheListenError() async throws {
        let first = try await RunningNode(
            configuration: FanfareConfiguration(host: "127.0.0.1", port: 0, nodeID: "first", eventLoops: 1)
        )
        let port = try #require(first.address.port)
        let second = try await self.node { $0.port = port }
        let error = try await self.failure(of: second)
        #expect(error.code == .unavailable)
        #expect(error.message == "the node cannot listen on its address", "\(error)")
        await #expect(throws: (any Error).self) { try await second.localAddress() }
        await first.shutdown()
    }

    @Test(.enabled(if: RedisServerProcess.enabled)) func anUnreachableRedisStopsTheNodeWithTheRedisError() async throws
    {
        let closed = try RedisServerProcess.closedPort()
        defer { closed.release() }
        let node = try await self.node { $0.redisURL = "redis://127.0.0.1:\(closed.port)" }
        let error = try await self.failure(of: node)
        #expect(error.code == .unavailable)
        #expect(error.message == "the node cannot start: connecting to Redis failed", "\(error)")
    }

    @Test func aRedisWithoutFunctionsStopsTheNodeSayingWhichRedisItNeeds() async throws {
        let old = try await OldRedisServer()
        let node = try await self.node { $0.redisURL = "redis://127.0.0.1:\(old.port)" }
        let error = try await self.failure(of: node)
        #expect(error.code == .invalidConfiguration)
        #expect(
            error.message
                == "the node cannot start: Redis 6.2.14 has no functions (FCALL): Fanfare needs Redis 7.0 or newer",
            "\(error)"
        )
        await old.stop()
    }

    @Test func aNodeRunsOnce() async throws {
        let running = try await RunningNode(
            configuration: FanfareConfiguration(host: "127.0.0.1", port: 0, nodeID: "once", eventLoops: 1)
        )
        let error = await #expect(throws: FanfareError.self) { try await running.node.run() }
        #expect(error?.code == .internalError)
        // The first run is untouched: the node still answers, then drains as usual.
        #expect(
            try await TestHTTPClient.request("GET", "http://127.0.0.1:\(running.address.port ?? 0)/healthz").status
                == 200
        )
        await running.shutdown()
    }

    @Test func aBadSettingIsRefusedBeforeAnythingRuns() async throws {
        let error = await #expect(throws: FanfareError.self) {
            _ = try await self.node { $0.security.jwtSecret = "short" }
        }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.description == "the JWT secret must be at least 32 bytes (try: openssl rand -hex 32)")
    }
}
