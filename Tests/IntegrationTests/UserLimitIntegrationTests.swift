import Fanfare
import Foundation
import ServerSentEvents
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `--max-connections-per-user` across nodes: counted in Redis, atomically, and given back
/// when a stream closes or its node dies.
@Suite(.enabled(if: RedisServerProcess.enabled), .timeLimit(.minutes(3)))
struct UserLimitIntegrationTests {
    /// Ten simultaneous opens for one user, spread over three node processes with a limit
    /// of 2: exactly two streams; the rest get 429. A SIGKILLed node gives its places back
    /// within the lease's lifetime, and a closed stream at once.
    @Test func simultaneousOpensAcrossThreeNodesGetExactlyTheLimit() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        var nodes: [NodeProcess] = []
        defer { for node in nodes { node.stop() } }
        for index in 0..<3 {
            nodes.append(
                try await NodeProcess(
                    id: "limit-\(index)",
                    redis: redis.url,
                    arguments: ["--max-connections-per-user", "2"]
                )
            )
        }
        let urls = nodes.map(\.url)
        let opened = try await withThrowingTaskGroup(of: (Int, TestStream).self) { group in
            for index in 0..<10 {
                group.addTask {
                    let url = urls[index % 3] + "/api/sse/subscribe/tab-\(index)?userId=ursula"
                    return (index, try await TestStream(url))
                }
            }
            return try await group.reduce(into: [(Int, TestStream)]()) { $0.append($1) }
        }
        let statuses = opened.map { $0.1.stream.status }
        #expect(statuses.filter { $0 == 200 }.count == 2, "statuses: \(statuses)")
        #expect(statuses.filter { $0 == 429 }.count == 8, "statuses: \(statuses)")
        let open = opened.filter { $0.1.stream.status == 200 }
        for (_, stream) in open { _ = try await stream.connected() }
        print("per-user race: 10 simultaneous opens over 3 nodes, limit 2: \(open.count) opened, statuses \(statuses)")

        // A stream that closes gives its place back at once: another opens, on a node
        // other than the one the test kills next.
        let (_, first) = try #require(open.first)
        let (secondIndex, second) = try #require(open.last)
        let doomed = nodes[secondIndex % 3]
        let survivor = (secondIndex + 1) % 3
        await first.close()
        let again = try await self.openWhenAllowed(urls[survivor], client: "tab-again", within: 5)
        print("per-user limit: a place given back by a closed stream was taken again after \(again.elapsed)")

        // Full again: one more is refused. Then the node of the other stream dies, and its
        // place lapses.
        let refused = try await TestStream(urls[survivor] + "/api/sse/subscribe/tab-over?userId=ursula")
        #expect(refused.stream.status == 429)
        doomed.kill(SIGKILL)
        _ = try await doomed.waitForExit(within: .seconds(10))
        await second.stream.waitUntilClosed()
        let replaced = try await self.openWhenAllowed(urls[survivor], client: "tab-after-kill", within: 15)
        print("per-user limit: the SIGKILLed node's place was free again after \(replaced.elapsed)")
        #expect(replaced.elapsed < .seconds(10), "the dead node's place came back after \(replaced.elapsed)")
        // And the limit still holds.
        let over = try await TestStream(urls[survivor] + "/api/sse/subscribe/tab-over-2?userId=ursula")
        #expect(over.stream.status == 429)
        for stream in [again.stream, replaced.stream] { await stream.close() }
    }

    /// Opens a stream for the user on `url` until one is let in; fails after `seconds`.
    private func openWhenAllowed(
        _ url: String,
        client: String,
        within seconds: Int
    ) async throws -> (stream: TestStream, elapsed: Duration) {
        let started = ContinuousClock.now
        let deadline = started + .seconds(seconds)
        var attempt = 0
        while ContinuousClock.now < deadline {
            attempt += 1
            let stream = try await TestStream(url + "/api/sse/subscribe/\(client)-\(attempt)?userId=ursula")
            if stream.stream.status == 200 {
                _ = try await stream.connected()
                return (stream, ContinuousClock.now - started)
            }
            #expect(stream.stream.status == 429)
            await stream.close()
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("no place for the user on \(url) within \(seconds) s")
    }

    /// With `close-oldest` and a limit of 1 ("one tab per user"): a new tab on another node
    /// ends the old one with `__disconnect` (no reconnect), and the new one stays.
    @Test(arguments: [false, true])
    func aNewerTabEndsTheOldestWithDisconnect(embedded: Bool) async throws {
        let harness = try await NodeHarness(nodes: embedded ? 1 : 2, embedded: embedded) { configuration in
            configuration.limits.connectionsPerUser = 1
            configuration.limits.userLimitPolicy = .closeOldest
        }
        let other = embedded ? 0 : 1
        let old = try await TestStream(harness.urls[0] + "/api/sse/subscribe/vera-old?userId=vera")
        _ = try await old.connected()
        let bystander = try await TestStream(harness.urls[0] + "/api/sse/subscribe/walt?userId=walt")
        _ = try await bystander.connected()
        let new = try await TestStream(harness.urls[other] + "/api/sse/subscribe/vera-new?userId=vera")
        #expect(new.stream.status == 200)
        _ = try await new.connected()
        let ended = try await old.next(includingControl: true)
        #expect(ended.event == "__disconnect")
        #expect(ended.data == #"{"reason":"connection limit per user: a newer stream opened","reconnect":false}"#)
        await old.stream.waitUntilClosed()
        // The new tab and the other user's stream still get events.
        #expect(try await harness.notify(0, #"{"userId":"vera","event":"hello"}"#).status == 200)
        #expect(try await new.next().event == "hello")
        #expect(try await harness.notify(0, #"{"userId":"walt","event":"still"}"#).status == 200)
        #expect(try await bystander.next().event == "still")
        // A stream without a user is not counted.
        let anonymous = try await TestStream(harness.urls[0] + "/api/sse/subscribe/nobody")
        #expect(anonymous.stream.status == 200)
        for stream in [new, bystander, anonymous] { await stream.close() }
        await harness.stop()
    }

    /// With `refuse`, embedded: the same limit in one process, a 429 that says so.
    @Test func theEmbeddedNodeRefusesOverTheLimitAndCountsTheRefusal() async throws {
        let harness = try await NodeHarness(nodes: 1, embedded: true) { configuration in
            configuration.limits.connectionsPerUser = 2
        }
        let first = try await TestStream(harness.urls[0] + "/api/sse/subscribe/x-1?userId=xena")
        let second = try await TestStream(harness.urls[0] + "/api/sse/subscribe/x-2?userId=xena")
        for stream in [first, second] { _ = try await stream.connected() }
        let third = try await TestHTTPClient.request("GET", harness.urls[0] + "/api/sse/subscribe/x-3?userId=xena")
        #expect(third.status == 429)
        #expect(third.body.contains("--max-connections-per-user"), "\(third.body)")
        let metrics = try await TestHTTPClient.request("GET", harness.urls[0] + "/metrics")
        #expect(metrics.body.contains(#"reason="connections_per_user""#), "\(metrics.body.prefix(400))")
        await first.close()
        let deadline = ContinuousClock.now + .seconds(10)
        var reopened: TestStream?
        while reopened == nil, ContinuousClock.now < deadline {
            let attempt = try await TestStream(harness.urls[0] + "/api/sse/subscribe/x-4?userId=xena")
            if attempt.stream.status == 200 { reopened = attempt } else { try await Task.sleep(for: .milliseconds(50)) }
        }
        let stream = try #require(reopened, "the closed stream's place did not come back")
        await stream.close()
        await second.close()
        await harness.stop()
    }
}
