import Fanfare
import Foundation
import HiredisNIO
import Logging
import NIOCore
import NIOPosix
import ServerSentEvents
import Testing

@Suite(.enabled(if: RedisServerProcess.enabled), .timeLimit(.minutes(2)))
struct ResumeIntegrationTests {
    /// Each event's position on `channel`, from its cursor.
    private func positions(_ events: [ServerSentEvent], _ channel: String) -> [String] {
        events.map { TestCursor.position($0.id, channel) ?? "?" }
    }

    /// Parses `123-4` for ordering checks.
    private func order(_ id: String) -> [UInt64] { id.split(separator: "-").compactMap { UInt64($0) } }

    private func isStrictlyIncreasing(_ ids: [String]) -> Bool {
        zip(ids, ids.dropFirst()).allSatisfy { self.order($0).lexicographicallyPrecedes(self.order($1)) }
    }

    @Test(arguments: [false, true])
    func aReconnectingClientGetsExactlyWhatItMissedThenLiveEvents(embedded: Bool) async throws {
        let harness = try await NodeHarness(nodes: embedded ? 1 : 2, embedded: embedded)
        let last = harness.urls.count - 1
        let first = try await TestStream(harness.urls[0] + "/api/sse/subscribe/resumer?channels=orders")
        _ = try await first.connected()
        try await harness.waitForConnections(1)
        var seen: [String] = []
        for index in 0..<10 {
            _ = try await harness.notify(0, #"{"channel":"orders","event":"before","payload":\#(index)}"#)
            seen.append(try await first.next().id ?? "")
        }
        await first.close()
        try await harness.waitForConnections(0)

        // 100 more while it is away: half through a node, half straight through Redis.
        var missed: [String] = []
        let redis: RedisConnection? =
            if let server = harness.redis {
                try await RedisConnection.connect(
                    configuration: server.configuration,
                    eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
                    logger: Logger(label: "test")
                )
            } else { nil }
        for index in 0..<100 {
            if let redis, index % 2 == 1 {
                // The one-command publish of the README.
                let reply = try await redis.send(
                    "FCALL",
                    arguments: ["fanfare_publish", 1, "fanfare:h:{orders}", "missed", RESPArgument("\(index)")]
                )
                missed.append(reply.array?.first?.string ?? "")
            } else {
                let (_, json) = try await harness.notify(
                    last,
                    #"{"channel":"orders","event":"missed","payload":\#(index)}"#
                )
                missed.append(json["id"] as? String ?? "")
            }
        }
        // Events on channels the client does not have are not replayed to it.
        _ = try await harness.notify(last, #"{"channel":"elsewhere","event":"not-mine"}"#)

        let second = try await TestStream(
            harness.urls[last] + "/api/sse/subscribe/resumer?channels=orders",
            headers: [("Last-Event-ID", seen.last ?? "")]
        )
        _ = try await second.connected()
        var replayed: [ServerSentEvent] = []
        for _ in 0..<100 { replayed.append(try await second.next()) }
        #expect(self.positions(replayed, "orders") == missed)
        #expect(replayed.allSatisfy { $0.event == "missed" })
        #expect(replayed.map(\.data) == (0..<100).map { "\($0)" })
        let (_, live) = try await harness.notify(0, #"{"channel":"orders","event":"live"}"#)
        let next = try await second.next()
        #expect(next.event == "live")
        #expect(TestCursor.position(next.id, "orders") == live["id"] as? String)
        await second.close()
        await redis?.close()
        await harness.stop()
    }

    @Test(arguments: [false, true])
    func anIDOlderThanTheHistoryGetsAResetThenLiveEvents(embedded: Bool) async throws {
        let harness = try await NodeHarness(nodes: 1, embedded: embedded) { $0.historyMaxLength = 5 }
        var ids: [String] = []
        for index in 0..<300 {
            let (_, json) = try await harness.notify(0, #"{"broadcast":true,"event":"e","payload":\#(index)}"#)
            ids.append(json["id"] as? String ?? "")
        }
        let channels = ["client:late", "broadcast"]
        let stale: [(id: String, reset: String)] = [
            // Ids of the earlier kind, and anything else that is not a cursor: one reset for all.
            (ids[0], #"{"channels":["client:late","broadcast"],"reason":"unknown"}"#),
            ("1-0", #"{"channels":["client:late","broadcast"],"reason":"unknown"}"#),
            ("not-an-id", #"{"channels":["client:late","broadcast"],"reason":"unknown"}"#),
            // A cursor whose broadcast position left the history, or was never issued.
            (
                TestCursor.make(["broadcast": ids[0]], channels: channels),
                #"{"channels":["broadcast"],"reason":"trimmed"}"#
            ),
            (
                TestCursor.make(["broadcast": "99999999999999-0"], channels: channels),
                #"{"channels":["broadcast"],"reason":"unknown"}"#
            ),
        ]
        for (id, expected) in stale {
            let stream = try await TestStream(harness.urls[0] + "/api/sse/subscribe/late?lastEventId=\(id)")
            _ = try await stream.connected()
            let reset = try await stream.next(includingControl: true)
            #expect(reset.event == "__reset", "\(id)")
            #expect(reset.data == expected, "\(id)")
            let (_, json) = try await harness.notify(0, #"{"broadcast":true,"event":"after-reset"}"#)
            // Past the gap come the events history still has (after a trim), then live ones.
            var after: [String] = []
            while after.last != json["id"] as? String {
                after.append(TestCursor.position(try await stream.next().id, "broadcast") ?? "?")
            }
            ids.append(json["id"] as? String ?? "")
            #expect(Array(ids.suffix(after.count)) == after, "\(id)")
            if expected.contains("trimmed") { #expect(after.count > 1, "\(id): the history's events come first") }
            await stream.close()
        }
        await harness.stop()
    }

    @Test(arguments: [false, true])
    func eventsOlderThanTheHistoryAgeAreGoneButAQuietChannelResumesWithoutAReset(embedded: Bool) async throws {
        let harness = try await NodeHarness(nodes: 1, embedded: embedded) { $0.historyMaxAgeSeconds = 1 }
        let (_, first) = try await harness.notify(0, #"{"broadcast":true,"event":"first"}"#)
        let (_, second) = try await harness.notify(0, #"{"broadcast":true,"event":"second"}"#)
        try await Task.sleep(for: .milliseconds(1_200))  // let both age out of the history
        let (_, fresh) = try await harness.notify(0, #"{"broadcast":true,"event":"fresh"}"#)
        let channels = ["client:aged", "broadcast"]

        // A client that had `first` missed `second`, which aged out: a reset for broadcast.
        let behind = TestCursor.make(["broadcast": first["id"] as? String ?? ""], channels: channels)
        let stale = try await TestStream(harness.urls[0] + "/api/sse/subscribe/aged?lastEventId=\(behind)")
        _ = try await stale.connected()
        let reset = try await stale.next(includingControl: true)
        #expect(reset.event == "__reset")
        #expect(reset.data == #"{"channels":["broadcast"],"reason":"trimmed"}"#)
        // Past the gap: `fresh`, which history still has.
        #expect(TestCursor.position(reset.id, "broadcast") == second["id"] as? String)
        let kept = try await stale.next()
        #expect(kept.event == "fresh")
        #expect(TestCursor.position(kept.id, "broadcast") == fresh["id"] as? String)
        await stale.close()

        // A client that had `second` missed nothing but `fresh`: its own last event aging
        // out of the history is no gap.
        let caughtUp = TestCursor.make(["broadcast": second["id"] as? String ?? ""], channels: channels)
        let quiet = try await TestStream(harness.urls[0] + "/api/sse/subscribe/aged?lastEventId=\(caughtUp)")
        _ = try await quiet.connected()
        let next = try await quiet.next(includingControl: true)
        #expect(next.event == "fresh")
        #expect(TestCursor.position(next.id, "broadcast") == fresh["id"] as? String)
        await quiet.close()
        await harness.stop()
    }

    @Test(arguments: [false, true])
    func publishesRacingTheReconnectArriveExactlyOnceInOrder(embedded: Bool) async throws {
        let harness = try await NodeHarness(nodes: embedded ? 1 : 2, embedded: embedded)
        let (_, start) = try await harness.notify(0, #"{"clientId":"racer","event":"start"}"#)
        let startID = TestCursor.make(
            ["client:racer": start["id"] as? String ?? ""],
            channels: ["client:racer", "broadcast"]
        )
        let total = 300
        let publisher = Task {
            var published: [String] = []
            for index in 0..<total {
                let (_, json) = try await harness.notify(
                    index % harness.urls.count,
                    #"{"clientId":"racer","event":"r","payload":\#(index)}"#
                )
                published.append(json["id"] as? String ?? "")
            }
            return published
        }
        try await Task.sleep(for: .milliseconds(20))
        let stream = try await TestStream(
            harness.urls[harness.urls.count - 1] + "/api/sse/subscribe/racer",
            headers: [("Last-Event-ID", startID)]
        )
        _ = try await stream.connected()
        let published = try await publisher.value
        var received: [String] = []
        while received.count < total {
            received.append(TestCursor.position(try await stream.next().id, "client:racer") ?? "?")
        }
        #expect(received == published)
        #expect(self.isStrictlyIncreasing(received))
        await stream.close()
        await harness.stop()
    }

    @Test func idsIncreaseStrictlyAcrossConcurrentPublishesFromThreeNodes() async throws {
        let harness = try await NodeHarness(nodes: 3)
        let watcher = try await TestStream(harness.urls[0] + "/api/sse/subscribe/watcher")
        _ = try await watcher.connected()
        try await harness.waitForConnections(1)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for node in 0..<3 {
                group.addTask {
                    for index in 0..<100 {
                        _ = try await harness.notify(
                            node,
                            #"{"broadcast":true,"event":"n\#(node)","payload":\#(index)}"#
                        )
                    }
                }
            }
            try await group.waitForAll()
        }
        var ids: [String] = []
        for _ in 0..<300 { ids.append(TestCursor.position(try await watcher.next().id, "broadcast") ?? "?") }
        #expect(Set(ids).count == 300)
        #expect(self.isStrictlyIncreasing(ids))
        await watcher.close()
        await harness.stop()
    }
}

@Suite(.enabled(if: RedisServerProcess.enabled), .timeLimit(.minutes(2)))
struct BackfillIntegrationTests {
    @Test func killingTheSubscriberConnectionsLosesNothing() async throws {
        let harness = try await NodeHarness(nodes: 2)
        guard let server = harness.redis else { throw TestFailure("no redis") }
        var streams: [TestStream] = []
        for index in 0..<4 {
            let stream = try await TestStream(harness.urls[index % 2] + "/api/sse/subscribe/bf\(index)")
            _ = try await stream.connected()
            streams.append(stream)
        }
        try await harness.waitForConnections(4)
        let admin = try await RedisConnection.connect(
            configuration: server.configuration,
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
            logger: Logger(label: "test")
        )
        let total = 1_000
        let publisher = Task {
            var ids: [String] = []
            for index in 0..<total {
                let (status, json) = try await harness.notify(
                    index % 2,
                    #"{"broadcast":true,"event":"bf","payload":\#(index)}"#
                )
                if status == 200 { ids.append(json["id"] as? String ?? "") }
            }
            return ids
        }
        var kills = 0
        for _ in 0..<3 {
            try await Task.sleep(for: .milliseconds(150))
            kills += Int(try await admin.send("CLIENT", "KILL", "TYPE", "pubsub").int ?? 0)
        }
        let published = try await publisher.value
        #expect(kills >= 2)
        #expect(published.count == total)
        for stream in streams {
            var received: [String] = []
            while received.count < published.count {
                let event = try await stream.next(includingControl: true)
                #expect(event.event != "__reset")
                if event.event == "bf" { received.append(TestCursor.position(event.id, "broadcast") ?? "?") }
            }
            #expect(received == published)
            await stream.close()
        }
        await admin.close()
        await harness.stop()
    }
}
