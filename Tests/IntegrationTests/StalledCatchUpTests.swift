import Fanfare
import FanfareAPI
import Foundation
import HiredisNIO
import Logging
import NIOCore
import NIOPosix
import ServerSentEvents
import Testing

/// A reader that stops reading in the middle of catching up, while its other channel is
/// busy: the node must close it like any slow consumer, hold no more than the bound plus a
/// page for it meanwhile, and let it resume without losing or repeating anything.
@Suite(.enabled(if: RedisServerProcess.enabled), .timeLimit(.minutes(3)))
struct StalledCatchUpTests {
    private static let bound = 256 * 1024

    /// Publishes `count` events of about 1 KiB on `channel`, 50 to a request; their ids.
    private static func publish(_ count: Int, on channel: String, node: NodeProcess) async throws -> [String] {
        let payload = "\"" + String(repeating: "x", count: 1_000) + "\""
        var ids: [String] = []
        var sent = 0
        while sent < count {
            let batch = min(50, count - sent)
            let body =
                "["
                + (0..<batch).map { _ in #"{"channel":"\#(channel)","event":"e","payload":\#(payload)}"# }
                .joined(separator: ",") + "]"
            let response = try await TestHTTPClient.request("POST", node.url + "/api/sse/notify", body: body)
            guard response.status == 200 else { throw TestFailure("publish: \(response.status) \(response.body)") }
            let answers = try APIJSON.decode([NotifyAnswer].self, from: Array(response.body.utf8))
            ids += answers.map(\.id)
            sent += batch
        }
        return ids
    }

    private static func rss(_ pid: pid_t) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
    }

    /// The whole events in raw stream bytes (after the response head).
    private static func events(in bytes: [UInt8]) -> [ServerSentEvent] {
        var parser = ServerSentEventParser()
        let text = String(decoding: bytes, as: UTF8.self)
        guard let body = text.range(of: "\r\n\r\n") else { return [] }
        return parser.parse(bytes: Array(text[body.upperBound...].utf8))
    }

    /// Adds the channel position that `event` moved (its cursor's position that differs
    /// from the last one recorded; among `published` when given).
    private static func record(
        _ event: ServerSentEvent,
        into received: inout [String: [String]],
        published: Set<String>
    ) {
        for channel in ["a", "b"] {
            guard let position = TestCursor.position(event.id, channel), position != received[channel]?.last,
                published.contains(position)
            else { continue }
            received[channel, default: []].append(position)
        }
    }

    @Test func aReaderThatStallsMidCatchUpIsClosedWithinTheBoundAndResumesLosslessly() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let node = try await NodeProcess(
            id: "stall",
            redis: redis.url,
            arguments: [
                "--slow-consumer-bytes", "\(Self.bound)", "--history-size", "100000", "--replay-cap", "100000",
                "--max-body-bytes", "1048576", "--log-level", "info",
            ]
        )
        defer { node.stop() }
        let path = "/api/sse/subscribe/stalled?channels=a,b"
        let start = try await TestStream(node.url + path)
        let cursor = try #require(try await start.next(includingControl: true).id)
        await start.close()

        // It misses 10 MB on a (more than the kernel's socket buffers hold), comes back,
        // reads a little of the catch-up and stops.
        let onA = try await Self.publish(10_000, on: "a", node: node)
        let stalled = try await StalledClient(url: node.url, path: path, headers: [("Last-Event-ID", cursor)])
        try await stalled.read(atLeast: 64 * 1024)
        let before = Self.rss(node.pid)
        // 24 MB go out on b meanwhile: live on a stream that is still catching up a.
        let onB = try await Self.publish(24_000, on: "b", node: node)
        try await withDeadline(seconds: 30, "the stalled reader to be closed") {
            while !node.logText().contains("sse.slow_consumer.closed") { try await Task.sleep(for: .milliseconds(50)) }
        }
        let growth = Self.rss(node.pid) - before
        let log = node.logText()
        let unsent = log.firstMatch(of: /unsent=(\d+)/).flatMap { Int($0.1) }
        #expect(unsent != nil, "the close says how many bytes were unsent: \(log.suffix(600))")
        #expect((unsent ?? .max) <= 2 * Self.bound, "closed with \(unsent ?? -1) bytes unsent")
        // The node held about the bound for it, not what was published (24 MB).
        #expect(growth < 16 * 1024 * 1024, "the node grew by \(growth) bytes")
        let metrics = try await TestHTTPClient.request("GET", node.url + "/metrics")
        #expect(metrics.body.contains(#"fanfare_slow_consumer_closes_total{node="stall"} 1"#))

        // What it had is kept; from its last id it resumes, and gets every other event once.
        let had = Self.events(in: try await stalled.readToEnd()).filter { $0.event == "e" }
        let last = had.last?.id ?? cursor
        let resumed = try await TestStream(node.url + path, headers: [("Last-Event-ID", last)])
        _ = try await resumed.connected()
        let published = Set(onA + onB)
        var kept: [String: [String]] = ["a": [], "b": []]
        for event in had {
            Self.record(event, into: &kept, published: published)
        }
        let hadBefore = kept
        let total = onA.count + onB.count
        let received = try await withDeadline(seconds: 60, "the rest of \(total) events") {
            var received = hadBefore
            while received["a", default: []].count + received["b", default: []].count < total {
                let event = try await resumed.next(includingControl: true)
                #expect(event.event != "__reset", "\(event.data ?? "")")
                guard event.event == "e" else { continue }
                Self.record(event, into: &received, published: published)
            }
            return received
        }
        for (channel, expected) in [("a", onA), ("b", onB)] {
            let got = received[channel] ?? []
            let first = zip(got, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            #expect(
                got.count == expected.count && first == nil,
                "\(channel): \(got.count) of \(expected.count), first difference at \(first ?? -1)"
            )
        }
        await resumed.close()
        print("stalled catch-up: closed with \(unsent ?? -1) bytes unsent, node grew by \(growth) bytes")
    }
}
