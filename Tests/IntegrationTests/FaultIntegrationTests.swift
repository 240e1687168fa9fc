import Fanfare
import FanfareAPI
import Foundation
import HiredisNIO
import Logging
import NIOCore
import NIOPosix
import ServerSentEvents
import Testing

/// The reliability contract under faults: nothing lost, nothing twice, order per channel,
/// and `__reset` exactly where history cannot cover. Sizes are kept small enough for the
/// test command; `Benchmarks/scenarios.sh` runs the same shapes bigger.
@Suite(.enabled(if: RedisServerProcess.enabled), .timeLimit(.minutes(3)))
struct FaultIntegrationTests {
    private func redisConnection(_ server: RedisServerProcess) async throws -> RedisConnection {
        try await RedisConnection.connect(
            configuration: server.configuration,
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
            logger: Logger(label: "test")
        )
    }

    /// The `__connected` cursor of a new stream for `client`, then the stream is closed.
    private func startingCursor(_ url: String) async throws -> String {
        let stream = try await TestStream(url)
        let connected = try await stream.next(includingControl: true)
        await stream.close()
        return try #require(connected.id)
    }

    @Test(arguments: [false, true])
    func aClientTenTimesTheSlowConsumerBoundBehindCatchesUpOnOneConnection(embedded: Bool) async throws {
        let bound = 64 * 1024
        let harness = try await NodeHarness(nodes: 1, embedded: embedded) { $0.slowConsumerBytes = bound }
        let url = harness.urls[0] + "/api/sse/subscribe/faraway"
        let cursor = try await self.startingCursor(url)
        try await harness.waitForConnections(0)
        // About ten times the bound, in events of about 1 KiB.
        let payload = "\"" + String(repeating: "x", count: 1_000) + "\""
        let total = 10 * bound / 1_000
        var published: [String] = []
        for index in 0..<total {
            let (status, json) = try await harness.notify(
                0,
                #"{"clientId":"faraway","event":"e\#(index)","payload":\#(payload)}"#
            )
            #expect(status == 200)
            published.append(json["id"] as? String ?? "")
        }
        let stream = try await TestStream(url, headers: [("Last-Event-ID", cursor)])
        _ = try await stream.connected()
        let received = try await withDeadline(seconds: 30, "the replay of \(total) events") {
            var received: [String] = []
            while received.count < total {
                let event = try await stream.next(includingControl: true)
                #expect(event.event != "__reset", "\(event.data ?? "")")
                if event.event?.hasPrefix("e") == true {
                    received.append(TestCursor.position(event.id, "client:faraway") ?? "?")
                }
            }
            return received
        }
        #expect(received == published)
        let metrics = try await harness.metrics(0)
        let thisNode = metrics["thisNode"] as? [String: Any]
        #expect(thisNode?["slowConsumerCloses"] as? Int == 0)
        #expect(thisNode?["eventsReplayed"] as? Int == total)
        await stream.close()
        await harness.stop()
    }

    @Test func manyClientsResumeInAHistoryBusyWithOtherChannels() async throws {
        let harness = try await NodeHarness(nodes: 2)
        let server = try #require(harness.redis)
        let clients = 200
        let behind = 50
        let others = 20_000
        var cursors: [String] = []
        for index in 0..<clients {
            cursors.append(try await self.startingCursor(harness.urls[index % 2] + "/api/sse/subscribe/busy\(index)"))
        }
        try await harness.waitForConnections(0)
        // What they miss, among many events of channels nobody of them is on, pipelined
        // straight into Redis the way any service publishes.
        let redis = try await self.redisConnection(server)
        var futures: [EventLoopFuture<RESPValue>] = []
        var missed: [[Int]] = Array(repeating: [], count: clients)
        let missedTotal = clients * behind
        let step = (others + missedTotal) / missedTotal
        var assigned = 0
        for index in 0..<(others + missedTotal) {
            let channel: String
            if index % step == 0, assigned < missedTotal {
                let client = assigned % clients
                assigned += 1
                missed[client].append(futures.count)
                channel = "client:busy\(client)"
            } else {
                channel = "noise\(index % 500)"
            }
            futures.append(
                redis.sendFuture(
                    "FCALL",
                    arguments: [
                        "fanfare_publish", 1, RESPArgument("fanfare:h:{\(channel)}"), "m", RESPArgument("\(index)"),
                    ]
                )
            )
        }
        var positions: [String] = []
        for future in futures { positions.append(try await future.get().array?.first?.string ?? "?") }
        await redis.close()

        let start = ContinuousClock.now
        let received = try await withThrowingTaskGroup(of: (Int, [String]).self) { group in
            for client in 0..<clients {
                // Resumed on the other node: cursors are the cluster's, not a node's.
                let url = harness.urls[(client + 1) % 2] + "/api/sse/subscribe/busy\(client)"
                let cursor = cursors[client]
                let expected = missed[client].count
                group.addTask {
                    let stream = try await TestStream(url, headers: [("Last-Event-ID", cursor)])
                    _ = try await stream.connected()
                    var got: [String] = []
                    while got.count < expected {
                        let event = try await stream.next(includingControl: true)
                        if event.event == "__reset" { throw TestFailure("busy\(client) got \(event.data ?? "")") }
                        got.append(TestCursor.position(event.id, "client:busy\(client)") ?? "?")
                    }
                    await stream.close()
                    return (client, got)
                }
            }
            var received: [Int: [String]] = [:]
            for try await (client, got) in group { received[client] = got }
            return received
        }
        for client in 0..<clients {
            #expect(received[client] == missed[client].map { positions[$0] }, "busy\(client)")
        }
        // Not a timed assertion: the figure is for the log (the benchmark reports it).
        print(
            "\(clients) clients resumed \(clients * behind) events among \(others) others in \(ContinuousClock.now - start)"
        )
        await harness.stop()
    }

    /// Redis, a TCP proxy in front of it that the test controls, a node (two loops) that
    /// reaches Redis only through the proxy, its URL, and a stream of client `job` on it.
    private func proxiedNodeWithAStream() async throws -> (
        RedisServerProcess, TCPProxy, RunningNode, String, TestStream
    ) {
        let redis = try await RedisServerProcess()
        let proxy = try await TCPProxy(upstreamPort: redis.port)
        let node = try await RunningNode(
            configuration: FanfareConfiguration(
                host: "127.0.0.1",
                port: try RedisServerProcess.freePort(),
                redisURL: proxy.url,
                nodeID: "node-proxied",
                registryInterval: .milliseconds(200),
                registryTTL: .seconds(2),
                eventLoops: 2
            )
        )
        let url = "http://127.0.0.1:\(node.address.port ?? 0)"
        let stream = try await TestStream(url + "/api/sse/subscribe/job")
        _ = try await stream.connected()
        return (redis, proxy, node, url, stream)
    }

    @Test func aPublishWhoseAnswerIsLostIsRetriedWithItsKeyAndDeliveredOnce() async throws {
        let (redis, proxy, node, url, stream) = try await self.proxiedNodeWithAStream()

        // The publish reaches Redis; its answer never comes back. (Marked by its key: the
        // node's delivery probes go through the same proxy, by the same function.)
        proxy.cutAfterForwarding("job-7-50")
        let body = #"{"clientId":"job","event":"progress","payload":50,"idempotencyKey":"job-7-50"}"#
        let lost = try await TestHTTPClient.request("POST", url + "/api/sse/notify", body: body)
        #expect(lost.status == 503)
        let error = try APIJSON.decode(ErrorAnswer.self, from: Array(lost.body.utf8))
        #expect(error.error.contains("may have been published"), "\(error.error)")
        #expect(error.error.contains("retry with the same idempotencyKey"), "\(error.error)")
        #expect(proxy.cuts == 1)

        // Concurrent publishes find the connection gone: one reconnect serves them all.
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<20 {
                group.addTask {
                    try await TestHTTPClient.request(
                        "POST",
                        url + "/api/sse/notify",
                        body: #"{"channel":"elsewhere","event":"c\#(index)"}"#
                    ).status
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(statuses.allSatisfy { $0 == 200 }, "\(statuses)")
        let admin = try await self.redisConnection(redis)
        let list = try await admin.send("CLIENT", "LIST").string ?? ""
        // At most one command connection per loop of the node (2), its subscriber, and
        // this one: a reconnect per caller would leave more.
        let clients = list.split(separator: "\n").count
        #expect(clients >= 3 && clients <= 4, "\(list)")
        await admin.close()

        // The retry with the same key publishes nothing: the first publish's position.
        let retry = try await TestHTTPClient.request("POST", url + "/api/sse/notify", body: body)
        #expect(retry.status == 200)
        let answer = try APIJSON.decode(NotifyAnswer.self, from: Array(retry.body.utf8))
        #expect(answer.duplicate == true)
        let marker = try await TestHTTPClient.request(
            "POST",
            url + "/api/sse/notify",
            body: #"{"clientId":"job","event":"done"}"#
        )
        #expect(marker.status == 200)
        let first = try await stream.next()
        #expect(first.event == "progress")
        #expect(TestCursor.position(first.id, "client:job") == answer.id)
        #expect(try await stream.next().event == "done")  // and no second "progress"
        await stream.close()
        await node.shutdown()
        await proxy.stop()
        redis.stop()
    }

    @Test func aBatchWhoseAnswersAreLostSaysSoPerEventAndItsRetryPublishesNothingTwice() async throws {
        let (redis, proxy, node, url, stream) = try await self.proxiedNodeWithAStream()

        let batch =
            "["
            + (0..<3).map { #"{"clientId":"job","event":"step","payload":\#($0),"idempotencyKey":"job-\#($0)"}"# }
            .joined(separator: ",") + "]"
        // The batch reaches Redis; its answers never come back. (Marked by a key of its own:
        // the node's delivery probes go through the same proxy, by the same function.)
        proxy.cutAfterForwarding("job-0")
        let lost = try await TestHTTPClient.request("POST", url + "/api/sse/notify", body: batch)
        #expect(lost.status == 503)
        let error = try APIJSON.decode(BatchErrorAnswer.self, from: Array(lost.body.utf8))
        #expect(error.code == 503)
        #expect(error.error.contains("3 of 3 events were not published"), "\(error.error)")
        try #require(error.results.count == 3)
        for item in error.results {
            guard case .failed(let failure) = item else {
                Issue.record("an event without its answer is reported published: \(item)")
                continue
            }
            #expect(failure.error.contains("may have been published: retry with the same idempotencyKey"))
        }

        // The retry of the same batch publishes nothing again: every answer is a duplicate.
        let retry = try await TestHTTPClient.request("POST", url + "/api/sse/notify", body: batch)
        #expect(retry.status == 200, "\(retry.body)")
        let answers = try APIJSON.decode([NotifyAnswer].self, from: Array(retry.body.utf8))
        #expect(answers.map(\.duplicate) == [true, true, true])
        let marker = try await TestHTTPClient.request(
            "POST",
            url + "/api/sse/notify",
            body: #"{"clientId":"job","event":"done"}"#
        )
        #expect(marker.status == 200)
        var received: [String] = []
        for _ in 0..<4 { received.append(try await stream.next().data ?? "") }
        #expect(received == ["0", "1", "2", "null"])  // each step once, in order, then done
        await stream.close()
        await node.shutdown()
        await proxy.stop()
        redis.stop()
    }

    @Test func theSubscriberKilledRepeatedlyWhileStreamsComeAndGoLosesNothing() async throws {
        let harness = try await NodeHarness(nodes: 2)
        let server = try #require(harness.redis)
        let admin = try await self.redisConnection(server)
        let steady = try await TestStream(harness.urls[0] + "/api/sse/subscribe/steady?channels=topic")
        _ = try await steady.connected()
        try await harness.waitForConnections(1)
        let total = 600
        let publisher = Task {
            var ids: [String] = []
            for index in 0..<total {
                let (status, json) = try await harness.notify(
                    index % 2,
                    #"{"channel":"topic","event":"t","payload":\#(index)}"#
                )
                if status == 200 { ids.append(json["id"] as? String ?? "") }
            }
            return ids
        }
        // Streams open and close on the same node (and channel) while the subscriber dies.
        let churn = Task {
            for round in 0..<30 {
                let stream = try await TestStream(harness.urls[0] + "/api/sse/subscribe/churn\(round)?channels=topic")
                _ = try await stream.connected()
                await stream.close()
            }
        }
        var kills = 0
        for _ in 0..<4 {
            try await Task.sleep(for: .milliseconds(120))
            kills += Int(try await admin.send("CLIENT", "KILL", "TYPE", "pubsub").int ?? 0)
        }
        try await churn.value
        let published = try await publisher.value
        #expect(kills >= 2)
        #expect(published.count == total)
        let received = try await withDeadline(seconds: 30, "every event on the steady stream") {
            var received: [String] = []
            while received.count < published.count {
                let event = try await steady.next(includingControl: true)
                #expect(event.event != "__reset", "\(event.data ?? "")")
                if event.event == "t" { received.append(TestCursor.position(event.id, "topic") ?? "?") }
            }
            return received
        }
        #expect(received == published)
        await steady.close()
        await admin.close()
        await harness.stop()
    }

    /// The subscriber's first connection fails (a back-off at start: a Redis restart, a
    /// failover, maxclients), and a stream's SUBSCRIBE fails meanwhile as "closed", left to
    /// the subscriber. Its first connection is not a reconnect, yet it must confirm that
    /// channel: the stream is attached, not left without `__connected`, and the node is
    /// not ready until then.
    @Test func aStreamOpenedBeforeTheSubscribersFirstConnectionIsAttachedByIt() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let proxy = try await TCPProxy(upstreamPort: redis.port)
        // The command connection gets through; the subscriber's attempts are refused.
        proxy.admitConnections(1)
        let node = try await RunningNode(
            configuration: FanfareConfiguration(
                host: "127.0.0.1",
                port: try RedisServerProcess.freePort(),
                redisURL: proxy.url,
                nodeID: "node-late-subscriber",
                eventLoops: 1
            )
        )
        let url = "http://127.0.0.1:\(node.address.port ?? 0)"
        try await withDeadline("the subscriber to be refused") {
            while proxy.refusedConnections == 0 { try await Task.sleep(for: .milliseconds(20)) }
        }
        let ready = try await TestHTTPClient.request("GET", url + "/readyz")
        #expect(ready.status == 503, "\(ready.body)")
        let stream = try await TestStream(url + "/api/sse/subscribe/early?channels=orders")
        try await Task.sleep(for: .milliseconds(300))  // its SUBSCRIBE is refused as "closed"
        proxy.admitConnections(nil)
        // Within the subscriber's back-off (at most 2 s), well before the pending check.
        let connected = try await withDeadline(seconds: 8, "the early stream's __connected") {
            try await stream.next(includingControl: true)
        }
        #expect(connected.event == "__connected")
        let published = try await TestHTTPClient.request(
            "POST",
            url + "/api/sse/notify",
            body: #"{"channel":"orders","event":"delivered"}"#
        )
        #expect(published.status == 200)
        #expect(try await stream.next().event == "delivered")
        try await withDeadline("the node to be ready") {
            while try await TestHTTPClient.request("GET", url + "/readyz").status != 200 {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        await stream.close()
        await node.shutdown()
        await proxy.stop()
    }

    @Test func aRedisThatComesBackEmptyResetsTheChannelsItLostAndGoesOn() async throws {
        let redis = try await RedisServerProcess()
        let port = redis.port
        let node = try await RunningNode(
            configuration: FanfareConfiguration(
                host: "127.0.0.1",
                port: try RedisServerProcess.freePort(),
                redisURL: redis.url,
                nodeID: "node-empty",
                registryInterval: .milliseconds(200),
                registryTTL: .seconds(2),
                eventLoops: 2
            )
        )
        let url = "http://127.0.0.1:\(node.address.port ?? 0)"
        let stream = try await TestStream(url + "/api/sse/subscribe/survivor?channels=orders")
        _ = try await stream.connected()
        let before = try await TestHTTPClient.request(
            "POST",
            url + "/api/sse/notify",
            body: #"{"channel":"orders","event":"before"}"#
        )
        #expect(before.status == 200)
        #expect(try await stream.next().event == "before")

        redis.stop()
        let revived = try await RedisServerProcess(onPort: port)
        // The node reconnects by itself; publishing works again on the empty server.
        try await withDeadline(seconds: 20, "a publish on the empty Redis") {
            while try await TestHTTPClient.request(
                "POST",
                url + "/api/sse/notify",
                body: #"{"channel":"orders","event":"after"}"#
            ).status != 200 {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        // The stream is told that orders' history is gone, then gets the new events.
        let sawReset = try await withDeadline(seconds: 20, "the reset and the event after it") {
            var sawReset = false
            while true {
                let event = try await stream.next(includingControl: true)
                if event.event == "__reset" {
                    let reset = try APIJSON.decode(ResetEvent.self, from: Array((event.data ?? "").utf8))
                    #expect(reset.channels.contains("orders"))
                    #expect(reset.reason == .gone)
                    sawReset = true
                }
                if event.event == "after" { return sawReset }
            }
        }
        #expect(sawReset)
        await stream.close()
        await node.shutdown()
        revived.stop()
    }
}
