import Fanfare
import Foundation
import NIOCore
import NIOPosix
import ServerSentEvents
import Synchronization
import Testing

/// Keeps every byte a connection receives.
final class ReceivedBytes: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let received = Mutex([UInt8]())

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        self.received.withLock { $0 += buffer.readableBytesView }
    }
}

/// A stream read as raw bytes: the response head, comments and every frame as sent.
final class RawStream: Sendable {
    let channel: any Channel
    private let collector = ReceivedBytes()

    /// Sends `GET path` with `headers` to `url`'s server, after the raw requests `before`
    /// on the same connection (pipelined).
    init(_ url: String, _ path: String, headers: [(String, String)] = [], before: String = "") async throws {
        let target = try TestHTTPClient.Target(url: url)
        let collector = self.collector
        self.channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
            .connect(host: target.host, port: target.port).get()
        var request =
            before + "GET \(path) HTTP/1.1\r\nHost: \(target.host):\(target.port)\r\nAccept: text/event-stream\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        try await self.channel.writeAndFlush(ByteBuffer(string: request))
    }

    var text: String { String(decoding: self.collector.received.withLock { $0 }, as: UTF8.self) }

    /// The response head's header lines, by lowercased name.
    var headers: [String: String] {
        let head = self.text.components(separatedBy: "\r\n\r\n").first ?? ""
        var headers: [String: String] = [:]
        for line in head.components(separatedBy: "\r\n").dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { headers[parts[0].lowercased()] = parts[1].trimmingCharacters(in: .whitespaces) }
        }
        return headers
    }

    /// The frames after the head, as sent (`\n\n`-separated).
    var frames: [String] {
        let body = self.text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
        return body.components(separatedBy: "\n\n").dropLast()
    }

    /// Waits until the frames satisfy `condition`.
    func waitUntil(_ what: String, seconds: Int = 10, _ condition: @escaping @Sendable ([String]) -> Bool) async throws
    {
        try await withDeadline(seconds: seconds, what) {
            while !condition(self.frames) { try await Task.sleep(for: .milliseconds(20)) }
        }
    }

    func close() async { try? await self.channel.close() }
}

/// What a stream response carries besides events: its headers, heartbeats, and where a
/// resume starts from.
@Suite(.enabled(if: RedisServerProcess.enabled), .timeLimit(.minutes(1)))
struct StreamResponseTests {
    @Test func aStreamHasItsSSEHeadersAndAllowedOriginsGetCORS() async throws {
        let harness = try await NodeHarness(nodes: 1, embedded: true) {
            $0.corsOrigins = ["https://app.example.org"]
        }
        let allowed = try await RawStream(
            harness.urls[0],
            "/api/sse/subscribe/cors",
            headers: [("Origin", "https://app.example.org")]
        )
        try await allowed.waitUntil("__connected") { $0.contains { $0.contains("event: __connected") } }
        #expect(allowed.text.hasPrefix("HTTP/1.1 200 OK\r\n"))
        let headers = allowed.headers
        #expect(headers["content-type"] == "text/event-stream; charset=utf-8")
        #expect(headers["cache-control"] == "no-cache, no-transform")
        #expect(headers["connection"] == "keep-alive")
        #expect(headers["x-accel-buffering"] == "no")
        #expect(headers["access-control-allow-origin"] == "https://app.example.org")
        #expect(headers["vary"] == "Origin")
        #expect(headers["content-length"] == nil && headers["transfer-encoding"] == nil)
        // The first frame says when to come back, before anything else.
        #expect(allowed.frames.first == "retry: 2000")

        let other = try await RawStream(
            harness.urls[0],
            "/api/sse/subscribe/cors-other",
            headers: [("Origin", "https://evil.example.net")]
        )
        try await other.waitUntil("__connected") { $0.contains { $0.contains("event: __connected") } }
        #expect(other.headers["content-type"] == "text/event-stream; charset=utf-8")
        #expect(other.headers["access-control-allow-origin"] == nil)
        #expect(other.headers["vary"] == nil)
        await allowed.close()
        await other.close()
        await harness.stop()
    }

    @Test(arguments: [false, true])
    func idleStreamsGetHeartbeats(asEvents: Bool) async throws {
        let harness = try await NodeHarness(nodes: 1, embedded: true) {
            $0.heartbeatInterval = .milliseconds(200)
            $0.heartbeatAsEvent = asEvents
        }
        let frame = asEvents ? "event: heartbeat\ndata: {}" : ": heartbeat"
        // Taken before the stream opens: frames are read in the background, so a test task
        // that gets the CPU late must not start its clock after the first beats arrived.
        let started = ContinuousClock.now
        let stream = try await RawStream(harness.urls[0], "/api/sse/subscribe/beat")
        try await stream.waitUntil("three heartbeats") { $0.filter { $0 == frame }.count >= 3 }
        // One timer per loop beats every 200 ms: three take two intervals (less the timer's
        // slack), not a burst.
        #expect(ContinuousClock.now - started >= .milliseconds(300))
        #expect(!stream.text.contains(asEvents ? "\n: heartbeat" : "event: heartbeat"))
        await stream.close()
        await harness.stop()
    }

    /// `--write-delay-ms` holds a turn's events that long before they are written (so that
    /// more go out in one write); every event arrives, in order.
    @Test func aWriteDelayHoldsEventsAndLosesNone() async throws {
        let harness = try await NodeHarness(nodes: 1, embedded: true) { $0.writeDelay = .milliseconds(100) }
        let stream = try await RawStream(harness.urls[0], "/api/sse/subscribe/held")
        try await stream.waitUntil("__connected") { $0.contains { $0.contains("event: __connected") } }
        let published = ContinuousClock.now
        for index in 1...3 {
            let answer = try await TestHTTPClient.request(
                "POST",
                harness.urls[0] + "/api/sse/notify",
                body: #"{"clientId":"held","event":"e","payload":{"n":\#(index)}}"#
            )
            #expect(answer.status == 200, "\(answer.body)")
        }
        try await stream.waitUntil("three events") { $0.filter { $0.contains("event: e") }.count == 3 }
        // The timer cannot fire early: nothing was written before the delay had passed.
        #expect(ContinuousClock.now - published >= .milliseconds(100))
        let order = stream.frames.filter { $0.contains("event: e") }.compactMap { frame in
            (1...3).first { frame.contains("\"n\":\($0)") }
        }
        #expect(order == [1, 2, 3])
        await stream.close()
        await harness.stop()
    }

    /// `?lastEventId=` resumes like the header (for clients that cannot set headers), and
    /// the header wins when both are given (EventSource sends it on its own reconnects).
    @Test func aResumeThroughTheQueryReplaysAndTheHeaderWins() async throws {
        let harness = try await NodeHarness(nodes: 2)
        let path = "/api/sse/subscribe/back?channels=news"
        let first = try await TestStream(harness.urls[0] + path)
        _ = try await first.connected()
        var ids: [String] = []
        for index in 1...5 {
            let (status, _) = try await harness.notify(1, #"{"channel":"news","event":"n\#(index)"}"#)
            #expect(status == 200)
            let event = try await first.next()
            #expect(event.event == "n\(index)")
            ids.append(event.id ?? "")
        }
        await first.close()
        let start = try #require(ids.first)

        // From after n1 by the query, on the other node: n2…n5.
        let byQuery = try await TestStream(
            harness.urls[1] + path + "&lastEventId="
                + (start.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
        )
        #expect(try await byQuery.next(includingControl: true).event == "__connected")
        for index in 2...5 { #expect(try await byQuery.next(includingControl: true).event == "n\(index)") }
        await byQuery.close()

        // Both: the header (after n4) wins over the query (after n1): only n5.
        let both = try await TestStream(
            harness.urls[1] + path + "&lastEventId="
                + (start.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""),
            headers: [("Last-Event-ID", ids[3])]
        )
        #expect(try await both.next(includingControl: true).event == "__connected")
        #expect(try await both.next(includingControl: true).event == "n5")
        let (status, _) = try await harness.notify(0, #"{"channel":"news","event":"live"}"#)
        #expect(status == 200)
        #expect(try await both.next(includingControl: true).event == "live")
        await both.close()
        await harness.stop()
    }
}
