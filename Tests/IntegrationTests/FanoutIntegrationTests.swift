import Fanfare
import FanfareAPI
import Foundation
import NIOCore
import NIOPosix
import ServerSentEvents
import Synchronization
import Testing

@Suite(.enabled(if: RedisServerProcess.enabled), .timeLimit(.minutes(2)))
struct FanoutIntegrationTests {
    private func harness(embedded: Bool) async throws -> NodeHarness {
        try await NodeHarness(nodes: embedded ? 1 : 3, embedded: embedded)
    }

    private func open(_ harness: NodeHarness, node: Int, _ path: String) async throws -> TestStream {
        let stream = try await TestStream(harness.urls[node % harness.urls.count] + path)
        #expect(stream.stream.status == 200)
        _ = try await stream.connected()
        return stream
    }

    @Test(arguments: [false, true])
    func aBroadcastReachesEveryConnectionExactlyOnce(embedded: Bool) async throws {
        let harness = try await self.harness(embedded: embedded)
        var streams: [TestStream] = []
        for index in 0..<6 {
            streams.append(try await self.open(harness, node: index, "/api/sse/subscribe/c\(index)"))
        }
        try await harness.waitForConnections(6)

        let (status, json) = try await harness.notify(0, #"{"broadcast":true,"event":"hello","payload":{"n":1}}"#)
        #expect(status == 200)
        #expect(json["ok"] as? Bool == true)
        #expect(json["sent"] as? Bool == true)
        #expect(json["connections"] as? Int == 6)
        let id = json["id"] as? String
        _ = try await harness.notify(harness.urls.count - 1, #"{"broadcast":true,"event":"marker","payload":null}"#)
        for stream in streams {
            let first = try await stream.next()
            #expect(first.event == "hello")
            #expect(TestCursor.position(first.id, "broadcast") == id)
            #expect(first.data == #"{"n":1}"#)
            // The very next event is the marker: no duplicate of the first.
            #expect(try await stream.next().event == "marker")
        }
        for stream in streams { await stream.close() }
        await harness.stop()
    }

    @Test(arguments: [false, true])
    func aClientMessageReachesThatClientOnEveryNodeAndNoOneElse(embedded: Bool) async throws {
        let harness = try await self.harness(embedded: embedded)
        let alice1 = try await self.open(harness, node: 0, "/api/sse/subscribe/alice")
        let alice2 = try await self.open(harness, node: 2, "/api/events?clientId=alice")
        let bob = try await self.open(harness, node: 1, "/api/notifications/stream?clientId=bob")
        try await harness.waitForConnections(3)

        let (status, json) = try await harness.notify(
            1 % harness.urls.count,
            #"{"clientId":"alice","event":"private","payload":"for alice"}"#
        )
        #expect(status == 200)
        #expect(json["clientId"] as? String == "alice")
        #expect(json["connections"] as? Int == 2)
        _ = try await harness.notify(0, #"{"broadcast":true,"event":"marker"}"#)
        for stream in [alice1, alice2] {
            let event = try await stream.next()
            #expect(event.event == "private")
            #expect(event.data == #""for alice""#)
            #expect(try await stream.next().event == "marker")
        }
        #expect(try await bob.next().event == "marker")
        for stream in [alice1, alice2, bob] { await stream.close() }
        await harness.stop()
    }

    @Test(arguments: [false, true])
    func aTopicReachesOnlyItsSubscribersAndUsersTheirStreams(embedded: Bool) async throws {
        let harness = try await self.harness(embedded: embedded)
        let orders = try await self.open(harness, node: 0, "/api/sse/subscribe/a?channels=orders,alerts")
        let alerts = try await self.open(harness, node: 1, "/api/sse/subscribe/b?channels=alerts&userId=42")
        let none = try await self.open(harness, node: 2, "/api/sse/subscribe/c")
        try await harness.waitForConnections(3)

        _ = try await harness.notify(0, #"{"channel":"orders","event":"order","payload":1}"#)
        _ = try await harness.notify(0, #"{"userId":"42","event":"mine","payload":2}"#)
        _ = try await harness.notify(0, #"{"broadcast":true,"event":"marker"}"#)
        #expect(try await orders.next().event == "order")
        #expect(try await orders.next().event == "marker")
        #expect(try await alerts.next().event == "mine")
        #expect(try await alerts.next().event == "marker")
        #expect(try await none.next().event == "marker")
        for stream in [orders, alerts, none] { await stream.close() }
        await harness.stop()
    }

    @Test(arguments: [false, true])
    func countsFallOnEveryNodeAfterClientsLeave(embedded: Bool) async throws {
        let harness = try await self.harness(embedded: embedded)
        var streams: [TestStream] = []
        for index in 0..<4 {
            streams.append(
                try await self.open(harness, node: index, "/api/sse/subscribe/\(index < 2 ? "same" : "c\(index)")")
            )
        }
        try await harness.waitForConnections(4)
        let metrics = try await harness.metrics(0)
        #expect(metrics["totalClients"] as? Int == 3)
        #expect((metrics["nodes"] as? [Any])?.count == harness.urls.count)

        for stream in streams.dropFirst() { await stream.close() }
        try await harness.waitForConnections(1)
        let after = try await harness.metrics(harness.urls.count - 1)
        #expect(after["totalClients"] as? Int == 1)
        #expect(after["averageConnectionsPerClient"] as? Double == 1)
        let clients = try await TestHTTPClient.request("GET", harness.urls[0] + "/api/sse/clients/same")
        #expect(clients.status == 200)
        let gone = try await TestHTTPClient.request("GET", harness.urls[0] + "/api/sse/clients/c3")
        #expect(gone.status == 404)
        await streams[0].close()
        await harness.stop()
    }

    @Test func badNotificationsAreRefusedAndPublishNothing() async throws {
        let harness = try await self.harness(embedded: false)
        let watcher = try await self.open(harness, node: 0, "/api/sse/subscribe/w?channels=orders")
        try await harness.waitForConnections(1)
        let bad = [
            #"{"broadcast":true,"clientId":"w","event":"x"}"#, #"{"event":"x"}"#,
            #"{"broadcast":true,"event":"__connected"}"#,
            #"{"broadcast":true,"event":"a\nb"}"#, #"{"channel":"bad channel!","event":"x"}"#, #"{"clientId":"w""#,
            "[1,2]", "",
        ]
        for body in bad {
            let (status, json) = try await harness.notify(0, body)
            #expect(status == 400, "\(body)")
            #expect(json["ok"] as? Bool == false)
            #expect(json["code"] as? Int == 400)
            #expect((json["error"] as? String)?.isEmpty == false)
        }
        _ = try await harness.notify(0, #"{"broadcast":true,"event":"marker"}"#)
        #expect(try await watcher.next().event == "marker")
        await watcher.close()
        await harness.stop()
    }

    @Test(arguments: [false, true])
    func aBatchIsPublishedInOrderAndAnsweredInOrder(embedded: Bool) async throws {
        let harness = try await self.harness(embedded: embedded)
        let watcher = try await self.open(harness, node: 0, "/api/sse/subscribe/w?channels=orders")
        try await harness.waitForConnections(1)
        let batch = """
            [{"channel":"orders","event":"e0","payload":0},
             {"channel":"orders","event":"e0b","payload":"b"},
             {"clientId":"w","event":"e1","payload":{"n": 1}},
             {"broadcast":true,"event":"e2"},
             {"channel":"orders","event":"e3","idempotencyKey":"order-3"},
             {"channel":"orders","event":"e3","idempotencyKey":"order-3"}]
            """
        let response = try await TestHTTPClient.request(
            "POST",
            harness.urls[harness.urls.count - 1] + "/api/sse/notify",
            body: batch
        )
        #expect(response.status == 200, "\(response.body)")
        let answers = try APIJSON.decode([NotifyAnswer].self, from: Array(response.body.utf8))
        try #require(answers.count == 6)
        #expect(answers.allSatisfy { $0.ok })
        #expect(answers[2].clientId == "w")
        #expect(answers[5].duplicate == true && answers[5].id == answers[4].id)
        #expect(answers[4].duplicate == nil)
        var events: [ServerSentEvent] = []
        for _ in 0..<5 { events.append(try await watcher.next()) }
        #expect(events.map(\.event) == ["e0", "e0b", "e1", "e2", "e3"])
        #expect(events[2].data == #"{"n":1}"#)
        // Each event's cursor holds its own position (the two of one channel in a row too).
        for (event, answer) in zip(events, [answers[0], answers[1]]) {
            #expect(TestCursor.position(event.id, "orders") == answer.id)
        }
        #expect(TestCursor.position(events[4].id, "orders") == answers[4].id)

        // A bad item refuses the whole batch, naming it; a batch must hold 1 to 1,000.
        let one = #"{"channel":"orders","event":"never"}"#
        let tooMany = "[" + Array(repeating: one, count: 1_001).joined(separator: ",") + "]"
        for (body, says) in [
            ("[\(one),{\"channel\":\"orders\",\"event\":\"__x\"}]", "item 1: event names starting with __"),
            ("[\(one),{\"event\":\"x\"}]", "item 1: give exactly one target"), ("[]", "empty"),
            (tooMany, "at most 1000"), ("[\(one),", "JSON object"),
        ] {
            let (status, json) = try await harness.notify(0, body)
            #expect(status == 400, "\(body.prefix(80))")
            #expect((json["error"] as? String)?.contains(says) == true, "\(json)")
        }
        _ = try await harness.notify(0, #"{"channel":"orders","event":"marker"}"#)
        #expect(try await watcher.next().event == "marker")  // nothing of the refused batches
        await watcher.close()
        await harness.stop()
    }

    @Test func aClientThatNeverReadsIsClosedWithoutDelayingOthersAndResumesLosslessly() async throws {
        let harness = try await NodeHarness(nodes: 1) { $0.slowConsumerBytes = 64 * 1024 }
        let reader = try await self.open(harness, node: 0, "/api/sse/subscribe/reader")
        let stalled = try await StalledClient(url: harness.urls[0], path: "/api/sse/subscribe/stalled")
        let cursor = try await stalled.connectedID()
        try await harness.waitForConnections(2)

        let payload = String(repeating: "x", count: 16 * 1024)
        let count = 400
        for index in 0..<count {
            _ = try await harness.notify(0, #"{"broadcast":true,"event":"e\#(index)","payload":"\#(payload)"}"#)
        }
        for index in 0..<count {
            #expect(try await reader.next().event == "e\(index)")
        }
        // 6.4 MB went out: far past the bound plus what the kernel buffers hold, so the
        // node must have dropped the stalled stream (its client cannot tell before it reads),
        // and counted it.
        try await harness.waitForConnections(1)
        let metrics = try await harness.metrics(0)
        #expect((metrics["thisNode"] as? [String: Any])?["slowConsumerCloses"] as? Int == 1)
        try? await stalled.channel.close()

        // Coming back from where it stopped reading, it gets every event it missed, in order.
        let resumed = try await TestStream(
            harness.urls[0] + "/api/sse/subscribe/stalled",
            headers: [("Last-Event-ID", cursor)]
        )
        #expect(try await resumed.next(includingControl: true).event == "__connected")
        for index in 0..<count {
            #expect(try await resumed.next(includingControl: true).event == "e\(index)")
        }
        await resumed.close()
        await reader.close()
        await harness.stop()
    }
}

/// A raw client that sends a stream request, reads what it is told to (up to its
/// `__connected` frame, or some bytes), and then never reads again until told to.
struct StalledClient {
    let channel: any Channel
    private let collector: ReceivedBytes

    init(url: String, path: String, headers: [(String, String)] = []) async throws {
        let target = try TestHTTPClient.Target(url: url)
        let collector = ReceivedBytes()
        self.collector = collector
        self.channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.autoRead, value: false)
            .channelOption(.socketOption(.so_rcvbuf), value: 4096)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
            .connect(host: target.host, port: target.port).get()
        var request = "GET \(path) HTTP/1.1\r\nHost: \(target.host)\r\nAccept: text/event-stream\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        try await self.channel.writeAndFlush(ByteBuffer(string: request + "\r\n"))
    }

    /// Reads until at least `count` bytes are in, then stops reading.
    func read(atLeast count: Int) async throws {
        try await withDeadline("\(count) bytes of the stream") {
            while self.collector.received.withLock({ $0.count }) < count {
                self.channel.read()
                try await Task.sleep(for: .milliseconds(10))
            }
        }
    }

    /// Reads everything until the server closes the connection; every byte received.
    func readToEnd() async throws -> [UInt8] {
        try await self.channel.setOption(.autoRead, value: true).get()
        self.channel.read()
        try await withDeadline(seconds: 30, "the end of the stalled stream") {
            try await self.channel.closeFuture.get()
        }
        return self.collector.received.withLock { $0 }
    }

    /// Reads until the `__connected` frame is in, and returns its id (the stream's cursor).
    func connectedID() async throws -> String {
        try await withDeadline("the stalled client's __connected frame") {
            while true {
                let text = String(decoding: self.collector.received.withLock { $0 }, as: UTF8.self)
                if let frame = text.components(separatedBy: "\n\n").first(where: { $0.contains("event: __connected") }),
                    let line = frame.split(separator: "\n").first(where: { $0.hasPrefix("id: ") })
                {
                    return String(line.dropFirst(4))
                }
                self.channel.read()
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }
}

@Suite(.enabled(if: RedisServerProcess.enabled), .timeLimit(.minutes(1)))
struct StreamConnectionTests {
    @Test func bytesSentAfterTheStreamStartedAreIgnored() async throws {
        let harness = try await NodeHarness(nodes: 1, embedded: true)
        let target = try TestHTTPClient.Target(url: harness.urls[0])
        let chatty = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: target.host, port: target.port).get()
        try await chatty.writeAndFlush(
            ByteBuffer(string: "GET /api/sse/subscribe/chatty HTTP/1.1\r\nHost: x\r\n\r\n")
        )
        try await harness.waitForConnections(1)
        // A pipelined request and plain garbage on an SSE connection: read and dropped.
        try await chatty.writeAndFlush(ByteBuffer(string: "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\u{0}\u{1}garbage"))
        let other = try await TestStream(harness.urls[0] + "/api/sse/subscribe/other")
        _ = try await other.connected()
        let (status, _) = try await harness.notify(0, #"{"broadcast":true,"event":"still-here"}"#)
        #expect(status == 200)
        #expect(try await other.next().event == "still-here")
        try await harness.waitForConnections(2)
        try? await chatty.close()
        try await harness.waitForConnections(1)
        await other.close()
        await harness.stop()
    }
}

/// Raw HTTP on a node's port: what comes back before the node closes the connection.
@Suite(.timeLimit(.minutes(1)))
struct RawHTTPTests {
    /// Sends `request` as one write and returns every byte until the node closes.
    private static func exchange(_ url: String, _ request: String) async throws -> String {
        let target = try TestHTTPClient.Target(url: url)
        let collector = ReceivedBytes()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
            .connect(host: target.host, port: target.port).get()
        try await channel.writeAndFlush(ByteBuffer(string: request))
        try await withDeadline(seconds: 5, "the node to close the connection") { try await channel.closeFuture.get() }
        return String(decoding: collector.received.withLock { $0 }, as: UTF8.self)
    }

    @Test func anHTTP10RequestIsAnsweredAndTheConnectionClosed() async throws {
        let harness = try await NodeHarness(nodes: 1, embedded: true)
        let answer = try await Self.exchange(harness.urls[0], "GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n")
        #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
        #expect(answer.lowercased().contains("connection: close"), "\(answer)")
        await harness.stop()
    }

    @Test func aMalformedRequestPipelinedBehindAPublishIsRefusedAfterThePublishIsAnswered() async throws {
        let harness = try await NodeHarness(nodes: 1, embedded: true)
        let body = #"{"broadcast":true,"event":"kept"}"#
        let request =
            "POST /api/sse/notify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)" + "\u{1}GARBAGE \u{0}\r\n\r\n"
        let answer = try await Self.exchange(harness.urls[0], request)
        let statuses = answer.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.prefix(3) }
        #expect(statuses == ["200", "400"], "\(answer)")
        #expect(answer.contains(#""ok":true"#), "\(answer)")
        await harness.stop()
    }
}

@Suite(.enabled(if: RedisServerProcess.enabled), .timeLimit(.minutes(1)))
struct RedisOutageTests {
    @Test func publishesFailWhileRedisIsDownAndWorkAgainAfterAnEmptyRestart() async throws {
        let harness = try await NodeHarness(nodes: 1)
        guard let redis = harness.redis else { throw TestFailure("no redis") }
        let stream = try await TestStream(harness.urls[0] + "/api/sse/subscribe/survivor")
        _ = try await stream.connected()
        try await harness.waitForConnections(1)

        redis.kill()
        let (down, json) = try await harness.notify(0, #"{"broadcast":true,"event":"lost"}"#)
        #expect(down == 503)
        #expect(json["ok"] as? Bool == false)
        let ready = try await TestHTTPClient.request("GET", harness.urls[0] + "/readyz")
        #expect(ready.status == 503)

        // The new server starts empty: no functions, no registry rows, no history.
        let revived = try await RedisServerProcess(onPort: redis.port)
        defer { revived.stop() }
        try await withDeadline("publishing to work again") {
            while try await harness.notify(0, #"{"broadcast":true,"event":"probe"}"#).status != 200 {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        try await withDeadline("the node to be ready again") {
            while try await TestHTTPClient.request("GET", harness.urls[0] + "/readyz").status != 200 {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        let (status, _) = try await harness.notify(0, #"{"broadcast":true,"event":"after"}"#)
        #expect(status == 200)
        // The stream survived the outage: it gets the events published once Redis was back.
        var seen: [String] = []
        while seen.last != "after" {
            seen.append(try await stream.next().event ?? "")
        }
        #expect(!seen.contains("lost"))
        await stream.close()
        await harness.stop()
    }
}
