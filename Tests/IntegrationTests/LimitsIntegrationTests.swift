import Fanfare
import FanfareAPI
import Foundation
import NIOCore
import NIOPosix
import ServerSentEvents
import Synchronization
import Testing

/// Sends raw bytes and collects everything the server answers until it closes.
enum RawHTTP {
    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let received = Mutex([UInt8]())
        let closed: EventLoopPromise<Void>

        init(closed: EventLoopPromise<Void>) {
            self.closed = closed
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = Self.unwrapInboundIn(data)
            self.received.withLock { $0 += buffer.readableBytesView }
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.closed.succeed()
        }
    }

    /// Writes `bytes`, then returns what came back once the server closed the connection.
    static func exchange(_ url: String, _ bytes: [UInt8], seconds: Int = 10) async throws -> String {
        let target = try TestHTTPClient.Target(url: url)
        let group = MultiThreadedEventLoopGroup.singleton
        let closed = group.next().makePromise(of: Void.self)
        let collector = Collector(closed: closed)
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
            .connect(host: target.host, port: target.port).get()
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
        try await withDeadline(seconds: seconds, "the server to close the connection") {
            try await closed.futureResult.get()
        }
        return String(decoding: collector.received.withLock { $0 }, as: UTF8.self)
    }
}

@Suite(.timeLimit(.minutes(1)))
struct LimitsIntegrationTests {
    private func status(_ url: String, headers: [(String, String)] = []) async throws -> Int {
        try await TestHTTPClient.request("GET", url, headers: headers).status
    }

    /// Opens a stream and waits for `__connected`.
    private func open(_ url: String) async throws -> TestStream {
        let stream = try await TestStream(url)
        #expect(stream.stream.status == 200)
        _ = try await stream.connected()
        return stream
    }

    private func refusals(_ harness: NodeHarness, _ reason: String) async throws -> Int {
        let text = try await TestHTTPClient.request("GET", harness.urls[0] + "/metrics").body
        let series = #"fanfare_refusals_total{node="node-0",reason="\#(reason)"} "#
        return text.split(separator: "\n").first { $0.hasPrefix(series) }.flatMap { Int($0.dropFirst(series.count)) }
            ?? -1
    }

    /// Waits until a stream request is accepted again (a closed stream gives its place
    /// back when its connection is gone).
    private func waitUntilAccepted(_ url: String) async throws -> TestStream {
        try await withDeadline("the limit to let a stream in again") {
            while true {
                let stream = try await TestStream(url)
                if stream.stream.status == 200 { return stream }
                await stream.close()
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    @Test func connectionsPerClientIDAreBoundedAndRecover() async throws {
        let harness = try await NodeHarness(nodes: 1, embedded: true) { $0.limits.connectionsPerClient = 2 }
        let url = harness.urls[0] + "/api/sse/subscribe/busy"
        let first = try await self.open(url)
        let second = try await self.open(url)
        let third = try await TestHTTPClient.request("GET", url)
        #expect(third.status == 429)
        #expect(third.body.contains(#""code":429"#))
        #expect(third.header("retry-after") != nil)
        // Other ids are not affected.
        let other = try await self.open(harness.urls[0] + "/api/sse/subscribe/calm")
        await first.close()
        let again = try await self.waitUntilAccepted(url)
        #expect(try await self.refusals(harness, "connections_per_client") >= 1)
        for stream in [second, other, again] { await stream.close() }
        await harness.stop()
    }

    @Test func connectionsPerAddressAndPerNodeAreBounded() async throws {
        let perIP = try await NodeHarness(nodes: 1, embedded: true) { $0.limits.connectionsPerIP = 3 }
        var streams: [TestStream] = []
        for index in 0..<3 { streams.append(try await self.open(perIP.urls[0] + "/api/sse/subscribe/ip-\(index)")) }
        #expect(try await self.status(perIP.urls[0] + "/api/sse/subscribe/ip-x") == 429)
        #expect(try await self.refusals(perIP, "connections_per_ip") == 1)
        await streams.removeFirst().close()
        streams.append(try await self.waitUntilAccepted(perIP.urls[0] + "/api/sse/subscribe/ip-x"))
        for stream in streams { await stream.close() }
        await perIP.stop()

        let perNode = try await NodeHarness(nodes: 1, embedded: true) { $0.limits.connectionsPerNode = 2 }
        let a = try await self.open(perNode.urls[0] + "/api/events?clientId=a")
        let b = try await self.open(perNode.urls[0] + "/api/events?clientId=b")
        #expect(try await self.status(perNode.urls[0] + "/api/events?clientId=c") == 429)
        #expect(try await self.refusals(perNode, "connections_per_node") == 1)
        // JSON routes are not streams and still work.
        #expect(try await self.status(perNode.urls[0] + "/healthz") == 200)
        await a.close()
        let c = try await self.waitUntilAccepted(perNode.urls[0] + "/api/events?clientId=c")
        await b.close()
        await c.close()
        await perNode.stop()
    }

    @Test func channelsPerStreamAreBoundedWith429() async throws {
        let harness = try await NodeHarness(nodes: 1, embedded: true) { $0.limits.channelsPerStream = 3 }
        let url = harness.urls[0] + "/api/sse/subscribe/many?userId=u&channels="
        let response = try await TestHTTPClient.request(
            "GET",
            url + "a,b,c,d",
            headers: [("Accept", "text/event-stream")]
        )
        #expect(response.status == 429)
        let error = try APIJSON.decode(ErrorAnswer.self, from: Array(response.body.utf8))
        #expect(error.error == "a stream may ask for at most 3 channels (--max-channels-per-stream)")
        #expect(try await self.refusals(harness, "channels_per_stream") == 1)
        // Three topics (repeats once) with a user: at the bound, accepted.
        let stream = try await self.open(url + "a,b,a,c")
        await stream.close()
        await harness.stop()
    }

    @Test func publishesPerSecondAreBoundedPerCredentialAndRecover() async throws {
        let harness = try await NodeHarness(nodes: 1, embedded: true) { $0.limits.publishesPerSecond = 5 }
        // A concurrent burst well over the rate: the first five pass, the rest are refused
        // (a slow machine only lets a few more through as the bucket refills).
        let answers = await withTaskGroup(of: (status: Int, retryAfter: String?, body: String).self) { group in
            for _ in 0..<30 {
                group.addTask {
                    let response = try? await TestHTTPClient.request(
                        "POST",
                        harness.urls[0] + "/api/sse/notify",
                        body: #"{"broadcast":true,"event":"burst"}"#
                    )
                    return (response?.status ?? 0, response?.header("retry-after"), response?.body ?? "")
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let statuses = answers.map(\.status)
        #expect(statuses.filter { $0 == 200 }.count >= 5, "\(statuses)")
        #expect(statuses.filter { $0 == 429 }.count >= 1, "\(statuses)")
        #expect(statuses.allSatisfy { $0 == 200 || $0 == 429 }, "\(statuses)")
        // Every refusal says when to come back, in the JSON error shape.
        for refusal in answers where refusal.status == 429 {
            #expect(refusal.retryAfter == "1")
            #expect(refusal.body.contains(#""code":429"#), "\(refusal.body)")
        }
        try await Task.sleep(for: .milliseconds(1100))
        #expect(try await harness.notify(0, #"{"broadcast":true,"event":"later"}"#).status == 200)
        #expect(
            try await self.refusals(harness, "publish_rate") == statuses.filter { $0 == 429 }.count
        )
        await harness.stop()
    }

    @Test func oversizedHeadersBodiesAndTargetsAreRefused() async throws {
        let harness = try await NodeHarness(nodes: 1, embedded: true)
        let url = harness.urls[0]
        let big = String(repeating: "a", count: 20_000)
        let headers = try await RawHTTP.exchange(
            url,
            Array("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: \(big)\r\n\r\n".utf8)
        )
        #expect(headers.hasPrefix("HTTP/1.1 431"), "\(headers.prefix(80))")
        #expect(headers.contains(#""code":431"#))

        let body = String(repeating: "x", count: 70_000)
        let large = try await TestHTTPClient.request("POST", url + "/api/sse/notify", body: body)
        #expect(large.status == 413)
        #expect(large.body.contains(#""code":413"#))

        let target = try await TestHTTPClient.request(
            "GET",
            url + "/healthz?q=" + String(repeating: "q", count: 9_000)
        )
        #expect(target.status == 414)
        #expect(try await self.refusals(harness, "header_size") == 1)
        #expect(try await self.refusals(harness, "body_size") == 1)
        #expect(try await self.refusals(harness, "uri_size") == 1)
        #expect(try await self.status(url + "/healthz") == 200)
        await harness.stop()
    }

    @Test func aClientSlowToSendItsHeadersGets408() async throws {
        // 2 s: a loaded test run can take a second between connecting and writing.
        let harness = try await NodeHarness(nodes: 1, embedded: true) { $0.limits.headerTimeout = .seconds(2) }
        let started = ContinuousClock.now
        let answer = try await RawHTTP.exchange(harness.urls[0], Array("GET /healthz HTTP/1.1\r\nHost: x\r\n".utf8))
        #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer.prefix(80))")
        #expect(answer.contains(#""code":408"#))
        #expect(ContinuousClock.now - started >= .milliseconds(1_900))
        #expect(try await self.refusals(harness, "header_timeout") == 1)
        #expect(try await self.status(harness.urls[0] + "/healthz") == 200)

        // A body announced and never finished: the same timer, counted on its own.
        let bodyStarted = ContinuousClock.now
        let slowBody = try await RawHTTP.exchange(
            harness.urls[0],
            Array("POST /api/sse/notify HTTP/1.1\r\nHost: x\r\nContent-Length: 65000\r\n\r\n{\"broadcast\"".utf8)
        )
        #expect(slowBody.hasPrefix("HTTP/1.1 408"), "\(slowBody.prefix(80))")
        #expect(slowBody.contains("the request body took too long"))
        #expect(ContinuousClock.now - bodyStarted >= .milliseconds(1_900))
        #expect(try await self.refusals(harness, "body_timeout") == 1)
        await harness.stop()
    }

    /// Requests sent back to back on one connection (pipelined) are each answered, in the
    /// order they came, also when an earlier one is answered later (a publish waits for Redis).
    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        let harness = try await NodeHarness(nodes: 1)
        let watcher = try await self.open(harness.urls[0] + "/api/sse/subscribe/w")
        func publish(_ data: String) -> String {
            let body = #"{"broadcast":true,"event":"p","payload":"\#(data)"}"#
            return "POST /api/sse/notify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
        }
        let requests =
            publish("one") + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + publish("two") + publish("three")
            + "GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        let answer = try await RawHTTP.exchange(harness.urls[0], Array(requests.utf8))
        let responses = answer.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0 }
        #expect(responses.map { $0.prefix(3) } == ["200", "200", "200", "200", "404"], "\(answer)")
        if responses.count == 5 {
            for index in [0, 2, 3] {
                #expect(responses[index].contains(#""id":""#) && responses[index].contains(#""ok":true"#))
            }
            #expect(!responses[1].contains(#""id":""#), "\(responses[1])")
        }
        var received: [String] = []
        for _ in 0..<3 { received.append(try await watcher.next().data ?? "") }
        #expect(received == [#""one""#, #""two""#, #""three""#])
        await watcher.close()
        await harness.stop()
    }

    /// A stream requested right behind a publish on one connection becomes a stream once the
    /// publish is answered, and reads again: its client's close is noticed.
    @Test func aStreamRequestedBehindAPublishNoticesItsClose() async throws {
        let harness = try await NodeHarness(nodes: 1)
        let body = #"{"broadcast":true,"event":"first"}"#
        let publish =
            "POST /api/sse/notify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
        let stream = try await RawStream(harness.urls[0], "/api/sse/subscribe/behind", before: publish)
        try await stream.waitUntil("__connected") { $0.contains { $0.contains("event: __connected") } }
        #expect(stream.text.hasPrefix("HTTP/1.1 200 OK"))
        try await harness.waitForConnections(1)
        await stream.close()
        try await harness.waitForConnections(0)
        await harness.stop()
    }

    @Test func everyBadInputGetsItsStatusAndPublishesNothing() async throws {
        let harness = try await NodeHarness(nodes: 1, embedded: true)
        let url = harness.urls[0]
        // A watcher on every kind of channel the bad requests name: it must receive nothing.
        let watcher = try await self.open(url + "/api/sse/subscribe/w?channels=orders,x&userId=u")
        let notify = url + "/api/sse/notify"
        let bodies: [(body: String, status: Int)] = [
            (#"{"broadcast":true,"event":"a\rb"}"#, 400),
            (#"{"broadcast":true,"event":"a\nb"}"#, 400),
            (#"{"broadcast":true,"event":"a\u0000b"}"#, 400),
            (#"{"broadcast":true,"event":"two words"}"#, 400),
            (#"{"broadcast":true,"event":"\#(String(repeating: "e", count: 129))"}"#, 400),
            (#"{"broadcast":true,"event":"__connected"}"#, 400),
            (#"{"broadcast":true,"event":"__reset"}"#, 400),
            (#"{"clientId":"w:x","event":"x"}"#, 400),
            (#"{"clientId":"w\r\nid: 1","event":"x"}"#, 400),
            (#"{"userId":"","event":"x"}"#, 400),
            (#"{"channel":"bad channel","event":"x"}"#, 400),
            (#"{"channel":"\#(String(repeating: "c", count: 129))","event":"x"}"#, 400),
            (#"{"channel":"ordérs","event":"x"}"#, 400),
            (#"{"clientId":"w","broadcast":true}"#, 400),
            (#"{"event":"x"}"#, 400),
            (#"{"broadcast":"yes"}"#, 400),
            (#"{"broadcast":1}"#, 400),
            (#"{"clientId":null,"broadcast":true}"#, 400),
            (#"{"broadcast":true,"extra":1}"#, 400),
            (#"{"clientId":"w""#, 400),
            ("not json", 400),
            ("[1,2]", 400),
            ("", 400),
        ]
        for (body, status) in bodies {
            let response = try await TestHTTPClient.request("POST", notify, body: body)
            #expect(response.status == status, "\(body) → \(response.status) \(response.body)")
            #expect(response.body.contains(#""ok":false"#), "\(body)")
            #expect(response.header("content-type")?.hasPrefix("application/json") == true)
        }
        let wrongType = try await TestHTTPClient.request(
            "POST",
            notify,
            body: #"{"broadcast":true,"event":"typed"}"#,
            headers: [("Content-Type", "text/plain")]
        )
        #expect(wrongType.status == 415)
        let form = try await TestHTTPClient.request(
            "POST",
            notify,
            body: #"{"broadcast":true,"event":"typed"}"#,
            headers: [("Content-Type", "application/x-www-form-urlencoded")]
        )
        #expect(form.status == 415)

        let requests: [(method: String, path: String, status: Int)] = [
            ("GET", "/nowhere", 404),
            ("GET", "/api/sse/notify", 405),
            ("DELETE", "/api/sse/metrics", 405),
            ("PUT", "/api/sse/subscribe/w", 405),
            ("GET", "/api/sse/subscribe/w:x", 400),
            ("GET", "/api/sse/subscribe/a%FFb", 400),
            ("GET", "/api/events?channels=%FF%FE", 400),
            ("GET", "/api/events?channels=a%ZZ", 400),
            ("GET", "/api/events?channels=bad%20channel", 400),
            ("GET", "/api/events?channels=client:w", 403),
            ("GET", "/api/events?clientId=\(String(repeating: "i", count: 101))", 400),
            ("GET", "/api/sse/clients/a:b", 400),
            ("GET", "/healthz?" + String(repeating: "q", count: 9_000), 414),
        ]
        for (method, path, status) in requests {
            let response = try await TestHTTPClient.request(method, url + path)
            #expect(response.status == status, "\(method) \(path.prefix(60)) → \(response.status) \(response.body)")
            #expect(response.body.contains(#""ok":false"#), "\(method) \(path.prefix(60))")
        }
        let options = try await TestHTTPClient.request("GET", url + "/api/sse/notify")
        #expect(options.header("allow")?.contains("POST") == true)

        // Nothing reached the watcher: the next event it sees is this one.
        #expect(try await harness.notify(0, #"{"broadcast":true,"event":"sentinel"}"#).status == 200)
        #expect(try await watcher.next().event == "sentinel")
        let metrics = try await harness.metrics(0)
        #expect((metrics["thisNode"] as? [String: Any])?["eventsPublished"] as? Int == 1)
        await watcher.close()
        await harness.stop()
    }
}
