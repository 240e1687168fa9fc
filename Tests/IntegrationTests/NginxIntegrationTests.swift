import Fanfare
import Foundation
import ServerSentEvents
import Testing

enum FanfareClientProbe {
    static func status(_ url: String) async throws -> Int {
        try await TestHTTPClient.request("GET", url).status
    }
}

@Suite(
    .enabled(if: RedisServerProcess.enabled && NginxProcess.enabled),
    .timeLimit(.minutes(2))
)
struct NginxIntegrationTests {
    /// Opens a stream through nginx and returns the node that answered (from `__connected`).
    private func nodeFor(_ nginx: NginxProcess, path: String) async throws -> String {
        let stream = try await TestStream(nginx.url + path)
        let connected = try await stream.connected()
        await stream.close()
        let data = connected["data"] ?? ""
        let object = try JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any]
        return object?["nodeId"] as? String ?? "?"
    }

    @Test func aClientIDAlwaysLandsOnTheSameNodeAndMovesOnlyWhenItIsDown() async throws {
        let harness = try await NodeHarness(nodes: 3)
        let nginx = try await NginxProcess(nodes: harness.urls.map { $0.replacingOccurrences(of: "http://", with: "") })

        var home: [String: String] = [:]
        for index in 0..<100 {
            let id = "sticky-\(index)"
            let path = index % 2 == 0 ? "/api/sse/subscribe/\(id)" : "/api/events?clientId=\(id)"
            var seen = Set<String>()
            for _ in 0..<3 { seen.insert(try await self.nodeFor(nginx, path: path)) }
            #expect(seen.count == 1, "\(id) landed on \(seen)")
            home[id] = seen.first
        }
        // The ids spread over all three nodes.
        #expect(Set(home.values).count == 3)

        // Stop node-0: only its clients move; everyone else stays where they were.
        await harness.nodes[0].shutdown()
        for (id, node) in home.sorted(by: { $0.key < $1.key }) {
            let now = try await self.nodeFor(nginx, path: "/api/sse/subscribe/\(id)")
            if node == "node-0" {
                #expect(now != "node-0")
            } else {
                #expect(now == node, "\(id) moved from \(node) to \(now)")
            }
        }
        nginx.stop()
        await harness.stop()
    }

    /// A browser on another origin reads a stream through nginx: the node's SSE and CORS
    /// headers pass through, and frames arrive unbuffered.
    @Test func aStreamThroughNginxKeepsItsHeadersAndCORS() async throws {
        let harness = try await NodeHarness(nodes: 3) { $0.corsOrigins = ["https://app.example.org"] }
        let nginx = try await NginxProcess(nodes: harness.urls.map { $0.replacingOccurrences(of: "http://", with: "") })
        let stream = try await RawStream(
            nginx.url,
            "/api/sse/subscribe/cors-proxied",
            headers: [("Origin", "https://app.example.org")]
        )
        try await stream.waitUntil("__connected through nginx") { $0.contains { $0.contains("event: __connected") } }
        #expect(stream.text.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(stream.text.prefix(200))")
        let headers = stream.headers
        #expect(headers["content-type"] == "text/event-stream; charset=utf-8")
        #expect(headers["cache-control"] == "no-cache, no-transform")
        #expect(headers["access-control-allow-origin"] == "https://app.example.org")
        #expect(headers["vary"] == "Origin")
        let (status, _) = try await harness.notify(1, #"{"clientId":"cors-proxied","event":"through"}"#)
        #expect(status == 200)
        try await stream.waitUntil("the event through nginx") { $0.contains { $0.contains("event: through") } }

        let preflight = try await TestHTTPClient.request(
            "OPTIONS",
            nginx.url + "/api/sse/notify",
            headers: [("Origin", "https://app.example.org"), ("Access-Control-Request-Method", "POST")]
        )
        #expect(preflight.header("access-control-allow-origin") == "https://app.example.org")
        #expect(preflight.header("access-control-allow-methods")?.contains("POST") == true)
        await stream.close()
        nginx.stop()
        await harness.stop()
    }

    @Test func publishesAndCountsWorkThroughNginx() async throws {
        let harness = try await NodeHarness(nodes: 3)
        let nginx = try await NginxProcess(nodes: harness.urls.map { $0.replacingOccurrences(of: "http://", with: "") })
        let stream = try await TestStream(nginx.url + "/api/sse/subscribe/through-nginx")
        _ = try await stream.connected()
        try await harness.waitForConnections(1)
        let response = try await TestHTTPClient.request(
            "POST",
            nginx.url + "/api/sse/notify",
            body: #"{"clientId":"through-nginx","event":"proxied","payload":[1,"two"]}"#
        )
        #expect(response.status == 200)
        let event = try await stream.next()
        #expect(event.event == "proxied")
        #expect(event.data == #"[1,"two"]"#)
        let metrics = try await TestHTTPClient.request("GET", nginx.url + "/api/sse/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.body.contains(#""totalConnections":1"#))
        // nginx stops with the stream still open: it waits for it only as long as the
        // config's worker_shutdown_timeout (1 s here), not forever.
        let stopping = ContinuousClock.now
        nginx.stop()
        #expect(ContinuousClock.now - stopping < .seconds(5))
        await stream.close()
        await harness.stop()
    }
}
