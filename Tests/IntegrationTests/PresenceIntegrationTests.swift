import Fanfare
import Foundation
import ServerSentEvents
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `--presence`: `presence:<channel>` carries a `join` when a user's first stream on the
/// channel opens anywhere in the cluster and a `leave` when its last one closes or its
/// node dies, each once, resumable like any channel.
@Suite(.enabled(if: RedisServerProcess.enabled), .timeLimit(.minutes(3)))
struct PresenceIntegrationTests {
    /// The next presence event, as `join alice`.
    private static func next(_ stream: TestStream) async throws -> (text: String, id: String?) {
        let event = try await stream.next()
        let data = try #require(try JSONSerialization.jsonObject(with: Data((event.data ?? "").utf8)) as? [String: Any])
        #expect(data["channel"] as? String == "room")
        return ("\(event.event ?? "") \(data["user"] as? String ?? "?")", event.id)
    }

    @Test(arguments: [false, true])
    func joinsAndLeavesComeOnceAcrossNodesAndResume(embedded: Bool) async throws {
        let harness = try await NodeHarness(nodes: embedded ? 1 : 2, embedded: embedded) { configuration in
            configuration.presence = true
        }
        let other = embedded ? 0 : 1
        let watcher = try await TestStream(harness.urls[0] + "/api/sse/subscribe/watcher?channels=presence:room")
        _ = try await watcher.connected()
        // Alice's first stream anywhere joins; her second, on the other node, does not.
        let alicePhone = try await TestStream(harness.urls[0] + "/api/sse/subscribe/a-phone?userId=alice&channels=room")
        _ = try await alicePhone.connected()
        #expect(try await Self.next(watcher).text == "join alice")
        let aliceLaptop = try await TestStream(
            harness.urls[other] + "/api/sse/subscribe/a-laptop?userId=alice&channels=room,elsewhere"
        )
        _ = try await aliceLaptop.connected()
        // Bob on the other node joins; a stream without a user is nobody.
        let bob = try await TestStream(harness.urls[other] + "/api/sse/subscribe/b-1?userId=bob&channels=room")
        _ = try await bob.connected()
        #expect(try await Self.next(watcher).text == "join bob")
        let anonymous = try await TestStream(harness.urls[0] + "/api/sse/subscribe/anon-1?channels=room")
        _ = try await anonymous.connected()
        // Who is on the room now, from either node.
        for url in harness.urls {
            let answer = try await TestHTTPClient.request("GET", url + "/api/sse/presence/room")
            #expect(answer.status == 200, "\(answer.body)")
            #expect(
                answer.body
                    == #"{"channel":"room","users":[{"streams":2,"userId":"alice"},{"streams":1,"userId":"bob"}]}"#
                    || answer.body
                        == #"{"channel":"room","users":[{"userId":"alice","streams":2},{"userId":"bob","streams":1}]}"#,
                "\(answer.body)"
            )
        }
        // Alice's first stream closes: she is still there. Her last one: she leaves.
        await alicePhone.close()
        await aliceLaptop.close()
        let leave = try await Self.next(watcher)
        #expect(leave.text == "leave alice")
        // The watcher goes away; Bob leaves and Carol joins meanwhile; the watcher resumes.
        await watcher.close()
        await bob.close()
        let carol = try await TestStream(harness.urls[other] + "/api/sse/subscribe/c-1?userId=carol&channels=room")
        _ = try await carol.connected()
        let resumed = try await TestStream(
            harness.urls[other] + "/api/sse/subscribe/watcher?channels=presence:room",
            headers: [("Last-Event-ID", try #require(leave.id))]
        )
        _ = try await resumed.connected()
        // Bob's leave and Carol's join, in the order the node saw them (it may see Bob's
        // connection close after Carol's stream opened).
        let missed = [try await Self.next(resumed).text, try await Self.next(resumed).text]
        #expect(Set(missed) == ["leave bob", "join carol"], "\(missed)")
        // Nothing else came: the next event is the one this test makes now.
        await carol.close()
        let last = try await Self.next(resumed).text
        #expect(last == "leave carol")
        // Services cannot publish on a presence channel; without --presence nobody follows one.
        let refused = try await harness.notify(0, #"{"channel":"presence:room","event":"join","payload":{}}"#)
        #expect(refused.status == 400)
        await resumed.close()
        await anonymous.close()
        await harness.stop()
    }

    /// A node that dies makes its users leave, once its leases lapse and a live node
    /// sweeps them.
    @Test func aNodesDeathMakesItsUsersLeave() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let watching = try await NodeProcess(id: "presence-a", redis: redis.url, arguments: ["--presence"])
        defer { watching.stop() }
        let doomed = try await NodeProcess(id: "presence-b", redis: redis.url, arguments: ["--presence"])
        defer { doomed.stop() }
        let watcher = try await TestStream(watching.url + "/api/sse/subscribe/watcher?channels=presence:room")
        _ = try await watcher.connected()
        let dana = try await TestStream(doomed.url + "/api/sse/subscribe/d-1?userId=dana&channels=room")
        _ = try await dana.connected()
        let erin = try await TestStream(watching.url + "/api/sse/subscribe/e-1?userId=erin&channels=room")
        _ = try await erin.connected()
        var joins: Set<String> = []
        for _ in 0..<2 { joins.insert(try await Self.next(watcher).text) }
        #expect(joins == ["join dana", "join erin"])
        doomed.kill(SIGKILL)
        _ = try await doomed.waitForExit(within: .seconds(10))
        let started = ContinuousClock.now
        let leave = try await withDeadline(seconds: 20, "dana's leave") { try await Self.next(watcher).text }
        #expect(leave == "leave dana")
        print("presence: the SIGKILLed node's user left after \(ContinuousClock.now - started)")
        let answer = try await TestHTTPClient.request("GET", watching.url + "/api/sse/presence/room")
        #expect(answer.body.contains("erin") && !answer.body.contains("dana"), "\(answer.body)")
        await erin.close()
        #expect(try await Self.next(watcher).text == "leave erin")
        await watcher.close()
    }

    /// With credentials: following `presence:<channel>` needs a token that grants it, an
    /// admin token or the admin key; the route needs the admin credential.
    @Test func followingPresenceNeedsItsGrantOrTheAdminCredential() async throws {
        let secret = "presence-secret-0123456789abcdef0123456789"
        let harness = try await NodeHarness(nodes: 1, embedded: true) { configuration in
            configuration.presence = true
            configuration.security = SecurityConfiguration(
                jwtSecret: secret,
                publisherKey: "presence-publisher",
                adminKey: "presence-admin"
            )
        }
        let url = harness.urls[0]
        func token(_ channels: [String], admin: Bool = false) async throws -> String {
            try await TokenMinter.mint(
                secret: secret,
                subject: "sam",
                channels: channels,
                expiresIn: 600,
                admin: admin
            )
        }
        let topicOnly = try await token(["client:sam", "room"])
        let refused = try await TestHTTPClient.request(
            "GET",
            url + "/api/sse/subscribe/sam?channels=presence:room&token=\(topicOnly)"
        )
        #expect(refused.status == 403, "\(refused.body)")
        let granted = try await TestStream(
            url
                + "/api/sse/subscribe/sam?channels=presence:room&token=\(try await token(["client:sam", "presence:room"]))"
        )
        #expect(granted.stream.status == 200)
        let adminToken = try await TestStream(
            url + "/api/sse/subscribe/dash-1?channels=presence:room&token=\(try await token([], admin: true))"
        )
        #expect(adminToken.stream.status == 200)
        let adminKey = try await TestStream(
            url + "/api/sse/subscribe/dash-2?channels=presence:room",
            headers: [("Authorization", "Bearer presence-admin")]
        )
        #expect(adminKey.stream.status == 200)
        // A user with a token joins; every follower hears it.
        let member = try await TestStream(
            url + "/api/sse/subscribe/sam-tab?channels=room&token=\(try await token(["client:sam-tab", "room"]))"
        )
        _ = try await member.connected()
        for follower in [granted, adminToken, adminKey] {
            _ = try await follower.connected()
            #expect(try await Self.next(follower).text == "join sam")
        }
        let anonymous = try await TestHTTPClient.request("GET", url + "/api/sse/presence/room")
        #expect(anonymous.status == 401)
        let listed = try await TestHTTPClient.request(
            "GET",
            url + "/api/sse/presence/room",
            headers: [("Authorization", "Bearer presence-admin")]
        )
        #expect(listed.status == 200)
        #expect(listed.body.contains(#""userId":"sam""#), "\(listed.body)")
        for stream in [granted, adminToken, adminKey, member] { await stream.close() }
        await harness.stop()
    }

    /// Without `--presence`, a presence channel is refused with a sentence, as is the route.
    @Test func aNodeWithoutPresenceSaysSo() async throws {
        let harness = try await NodeHarness(nodes: 1, embedded: true)
        let stream = try await TestHTTPClient.request(
            "GET",
            harness.urls[0] + "/api/sse/subscribe/w?channels=presence:room"
        )
        #expect(stream.status == 400)
        #expect(stream.body.contains("--presence"), "\(stream.body)")
        let route = try await TestHTTPClient.request("GET", harness.urls[0] + "/api/sse/presence/room")
        #expect(route.status == 404)
        #expect(route.body.contains("--presence"), "\(route.body)")
        await harness.stop()
    }
}
