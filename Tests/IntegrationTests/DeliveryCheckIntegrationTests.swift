import Foundation
import Testing

/// A node whose path to Redis passes every reply but drops the pub/sub messages (a
/// half-broken proxy, a subscriber left on the wrong server): its delivery check must
/// notice, say so, hand its streams to the other nodes (directly and through nginx) with
/// nothing lost or repeated, and come back by itself once the path heals.
@Suite(
    .enabled(if: RedisServerProcess.enabled && NginxProcess.enabled),
    .serialized,
    .timeLimit(.minutes(3))
)
struct DeliveryCheckIntegrationTests {
    private static func readiness(_ node: NodeProcess) async throws -> (status: Int, body: [String: Any]) {
        let response = try await TestHTTPClient.request("GET", node.url + "/readyz")
        let body = (try? JSONSerialization.jsonObject(with: Data(response.body.utf8))) as? [String: Any] ?? [:]
        return (response.status, body)
    }

    @Test func aNodeThatCannotDeliverTurnsUnreadyHandsItsStreamsOverAndRecovers() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let proxy = try await TCPProxy(upstreamPort: redis.port)
        // The node behind the proxy runs with the default check: a probe a second, 3 s to
        // come back, 5 s of grace.
        let muted = try await NodeProcess(id: "mute-a", redis: proxy.url)
        defer { muted.stop() }
        let others = [
            try await NodeProcess(id: "mute-b", redis: redis.url),
            try await NodeProcess(id: "mute-c", redis: redis.url),
        ]
        defer { for node in others { node.stop() } }
        let nginx = try await NginxProcess(nodes: [muted.address] + others.map(\.address))
        defer { nginx.stop() }

        // Clients straight on the muted node that know another node too, and clients
        // through nginx until two of them landed on the muted node.
        let direct = (0..<3).map {
            ResumingClient(clientID: "direct-\($0)", baseURLs: [muted.url, others[0].url])
        }
        let proxied = try await withDeadline(seconds: 20, "two clients through nginx on the muted node") {
            var proxied: [ResumingClient] = []
            while proxied.filter({ $0.nodes.first == muted.id }).count < 2 {
                guard proxied.count < 40 else { throw TestFailure("nginx sent no client to the muted node") }
                let client = ResumingClient(clientID: "via-\(proxied.count)", baseURL: nginx.url)
                proxied.append(client)
                while client.nodes.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
            }
            for client in direct {
                while client.nodes.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
            }
            return proxied
        }
        let clients = direct + proxied
        let moving = direct + proxied.filter { $0.nodes.first == muted.id }
        #expect(direct.allSatisfy { $0.nodes == [muted.id] })

        let publisher = IntervalPublisher(url: others[1].url)
        try await publisher.waitForAcknowledged(more: 10)

        let start = ContinuousClock.now
        proxy.dropPushes(true)
        try await withDeadline(seconds: 5, "the muted node to turn unready") {
            while try await Self.readiness(muted).status != 503 { try await Task.sleep(for: .milliseconds(50)) }
        }
        let detected = try await Self.readiness(muted).body
        let detection = ContinuousClock.now - start
        #expect(detected["delivery"] as? String == "stalled")
        #expect((detected["reason"] as? String)?.contains("delivery stalled") == true, "\(detected)")
        #expect(proxy.droppedPushes > 0)
        // The others deliver, and say so.
        for node in others { #expect(try await Self.readiness(node).status == 200) }

        try await withDeadline(seconds: 15, "the muted node's streams to move to other nodes") {
            for client in moving {
                while client.nodes.count < 2 || client.nodes.last == muted.id {
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
        }
        let handOver = ContinuousClock.now - start
        #expect(ContinuousClock.now - start < .seconds(15))
        // Meanwhile a new stream straight on it is refused: a proxy tries another node.
        let refused = try await TestHTTPClient.request("GET", muted.url + "/api/sse/subscribe/late")
        #expect(refused.status == 503, "\(refused.body)")
        let metrics = try await TestHTTPClient.request("GET", muted.url + "/metrics")
        #expect(metrics.body.contains(#"fanfare_delivery_stalled{node="mute-a"} 1"#), "\(metrics.body.prefix(400))")
        #expect(metrics.body.contains(#"fanfare_delivery_stalls_total{node="mute-a"} 1"#))
        // The cluster's counts show which node does not deliver.
        let cluster = try await TestHTTPClient.request("GET", others[0].url + "/api/sse/metrics")
        let rows = (try JSONSerialization.jsonObject(with: Data(cluster.body.utf8)) as? [String: Any])?["nodes"]
        let mutedRow = (rows as? [[String: Any]])?.first { $0["nodeId"] as? String == muted.id }
        #expect(mutedRow?["delivering"] as? Bool == false, "\(cluster.body)")

        try await publisher.waitForAcknowledged(more: 20)
        proxy.dropPushes(false)
        let healed = ContinuousClock.now
        try await withDeadline(seconds: 15, "the muted node to be ready again") {
            while try await Self.readiness(muted).status != 200 { try await Task.sleep(for: .milliseconds(50)) }
        }
        let recovery = ContinuousClock.now - healed
        let back = try await TestHTTPClient.stream(muted.url + "/api/sse/subscribe/back") { _ in }
        #expect(back.status == 200)
        await back.close()
        try await publisher.waitForAcknowledged(more: 10)
        await publisher.stop()

        let acknowledged = publisher.acknowledged
        try await waitForDelivery(clients, acknowledged: acknowledged, seconds: 30)
        for client in clients {
            expectExactlyOnceInOrder(client, acknowledged: acknowledged)
        }
        // Not timed assertions beyond the issue's bounds: the figures are for the log.
        print(
            "delivery check: unready after \(detection), streams moved after \(handOver), "
                + "ready \(recovery) after the path healed; \(moving.count) clients moved, "
                + "\(acknowledged.count) events, \(proxy.droppedPushes) pushes dropped"
        )
        for client in clients { await client.stop() }
        await proxy.stop()
    }
}
