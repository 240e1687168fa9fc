import Fanfare
import Foundation
import HiredisNIO
import Logging
import NIOPosix
import Testing

@Suite(.enabled(if: RedisServerProcess.enabled), .timeLimit(.minutes(1)))
struct MetricsIntegrationTests {
    /// The value of one series (`name{node="…"}`) in Prometheus text.
    private func value(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    private func scrape(_ url: String) async throws -> (contentType: String?, text: String) {
        let response = try await TestHTTPClient.request("GET", url + "/metrics")
        #expect(response.status == 200)
        return (response.header("content-type"), response.body)
    }

    @Test func prometheusCountsPublishesDeliveriesLatencyAndRedisReconnects() async throws {
        let harness = try await NodeHarness(nodes: 1)
        let url = harness.urls[0]
        let first = try await TestStream(url + "/api/sse/subscribe/metrics-a")
        let second = try await TestStream(url + "/api/sse/subscribe/metrics-a")
        _ = try await first.connected()
        _ = try await second.connected()
        for index in 0..<3 {
            let answer = try await harness.notify(0, #"{"clientId":"metrics-a","event":"m","payload":\#(index)}"#)
            #expect(answer.status == 200)
        }
        for _ in 0..<3 {
            _ = try await first.next()
            _ = try await second.next()
        }

        // Ready once the delivery check's first probe came back (a moment after start).
        try await withDeadline("the node to be ready") {
            while try await TestHTTPClient.request("GET", url + "/readyz").status != 200 {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        let (contentType, text) = try await self.scrape(url)
        #expect(contentType?.hasPrefix("text/plain") == true)
        let node = #"{node="node-0"}"#
        #expect(self.value(text, "fanfare_events_published_total" + node) == 3)
        #expect(self.value(text, "fanfare_deliveries_total" + node) == 6)
        #expect(self.value(text, "fanfare_connections" + node) == 2)
        #expect(self.value(text, "fanfare_clients" + node) == 1)
        #expect(self.value(text, "fanfare_ready" + node) == 1)
        #expect(self.value(text, "fanfare_redis_reconnects_total" + node) == 0)
        // One latency sample per event and event loop that wrote it.
        let samples = self.value(text, "fanfare_delivery_latency_seconds_count" + node) ?? 0
        #expect(samples >= 3)
        #expect(text.contains(#"fanfare_delivery_latency_seconds_bucket{node="node-0",le="+Inf"}"#))

        // The process's own figures (this test process runs the node), plausible ones.
        #expect(text.contains("# TYPE process_cpu_seconds_total counter"))
        #expect((self.value(text, "process_cpu_seconds_total") ?? 0) > 0)
        #expect((self.value(text, "process_resident_memory_bytes") ?? 0) > 4_000_000)
        let virtual = self.value(text, "process_virtual_memory_bytes") ?? 0
        #expect(virtual > (self.value(text, "process_resident_memory_bytes") ?? .infinity))
        let open = self.value(text, "process_open_fds") ?? 0
        // At least the two streams' sockets, the listener and Redis's connections.
        #expect(open >= 5)
        #expect(open < (self.value(text, "process_max_fds") ?? 0))
        let started = self.value(text, "process_start_time_seconds") ?? 0
        let now = Date().timeIntervalSince1970
        #expect(started <= now + 1 && started > now - 3 * 3600, "started \(started), now \(now)")

        // A dropped subscription counts as a Redis reconnect once it is back.
        let admin = try await RedisConnection.connect(
            configuration: try #require(harness.redis).configuration,
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
            logger: Logger(label: "test")
        )
        _ = try await admin.send("CLIENT", "KILL", "TYPE", "pubsub")
        await admin.close()
        try await withDeadline("the reconnect to be counted") {
            while self.value(try await self.scrape(url).text, "fanfare_redis_reconnects_total" + node) != 1 {
                try await Task.sleep(for: .milliseconds(50))
            }
        }

        // Streams that leave are no longer counted.
        await first.close()
        await second.close()
        try await withDeadline("the connections gauge to fall") {
            while self.value(try await self.scrape(url).text, "fanfare_connections" + node) != 0 {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        await harness.stop()
    }
}
