import Fanfare
import Foundation
import ServerSentEvents
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The cluster as it runs in production: a redis-server (append-only), three `fanfare`
/// processes and nginx with the project's config, all started by the test. Nodes are
/// killed with real signals while events are published.
@Suite(
    .enabled(if: RedisServerProcess.enabled && NginxProcess.enabled),
    .serialized,
    .timeLimit(.minutes(3))
)
struct SystemTests {
    private struct Cluster {
        let redis: RedisServerProcess
        let nodes: [NodeProcess]
        let nginx: NginxProcess

        init(nodeArguments: [String] = []) async throws {
            self.redis = try await RedisServerProcess(arguments: ["--appendonly", "yes"])
            var nodes: [NodeProcess] = []
            for index in 1...3 {
                nodes.append(try await NodeProcess(id: "sys-\(index)", redis: self.redis.url, arguments: nodeArguments))
            }
            self.nodes = nodes
            self.nginx = try await NginxProcess(nodes: nodes.map(\.address))
        }

        func stop() {
            self.nginx.stop()
            for node in self.nodes { node.stop() }
            self.redis.stop()
        }

        /// Node ids in the cluster-wide metrics, asked through nginx.
        func liveNodes() async throws -> [String] {
            let response = try await TestHTTPClient.request("GET", self.nginx.url + "/api/sse/metrics")
            let json = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any]
            let rows = json?["nodes"] as? [[String: Any]] ?? []
            return rows.compactMap { $0["nodeId"] as? String }.sorted()
        }
    }

    /// Opens `count` resuming clients through nginx and waits until each is connected.
    private func connectClients(_ count: Int, prefix: String, cluster: Cluster) async throws -> [ResumingClient] {
        let clients = (0..<count).map { ResumingClient(clientID: "\(prefix)-\($0)", baseURL: cluster.nginx.url) }
        try await withDeadline("\(count) clients to connect") {
            for client in clients {
                while client.nodes.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
            }
        }
        return clients
    }

    /// Every client got every acknowledged event exactly once and in order; the victim's
    /// clients did so from another node.
    private func expectDelivered(
        _ acknowledged: [Acknowledged],
        to clients: [ResumingClient],
        movedFrom victim: NodeProcess,
        victimsClients: [ResumingClient]
    ) async throws {
        try await waitForDelivery(clients, acknowledged: acknowledged)
        for client in clients {
            expectExactlyOnceInOrder(client, acknowledged: acknowledged)
        }
        for client in victimsClients {
            #expect(client.nodes.count >= 2, "\(client.clientID) never reconnected")
            #expect(client.nodes.last != victim.id)
        }
    }

    /// The node with the most clients (ties: the first).
    private func busiestNode(_ clients: [ResumingClient], of cluster: Cluster) -> NodeProcess? {
        var count: [String: Int] = [:]
        for client in clients { count[client.nodes.last ?? "", default: 0] += 1 }
        let id = count.max { $0.value < $1.value }?.key
        return cluster.nodes.first { $0.id == id }
    }

    @Test func aKilledNodesClientsResumeElsewhereAndReceiveEveryEventOnce() async throws {
        let cluster = try await Cluster()
        let clients = try await self.connectClients(30, prefix: "kill", cluster: cluster)
        #expect(Set(clients.compactMap(\.nodes.last)).count == 3, "clients did not spread over the nodes")
        let victim = try #require(self.busiestNode(clients, of: cluster))
        let victimsClients = clients.filter { $0.nodes.last == victim.id }

        let publisher = IntervalPublisher(url: cluster.nginx.url)
        try await publisher.waitForAcknowledged(more: 10)
        victim.kill(SIGKILL)
        // The dead node's row expires from the registry (its TTL is 5 s), counted from the kill.
        try await withDeadline(seconds: 15, "the metrics to show two nodes") {
            while try await cluster.liveNodes().count != 2 { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(try await cluster.liveNodes().contains(victim.id) == false)
        // Publishing goes on through the outage and after it.
        try await publisher.waitForAcknowledged(more: 30)

        await publisher.stop()
        let acknowledged = publisher.acknowledged
        try await self.expectDelivered(acknowledged, to: clients, movedFrom: victim, victimsClients: victimsClients)
        for client in clients { await client.stop() }
        cluster.stop()
    }

    /// Clients that open their streams as `fetch` does (POST, parameters and last id in the
    /// JSON body, no EventSource) through nginx: their node is SIGKILLed, they re-POST with
    /// their last id and get every acknowledged event once, in order.
    @Test func postOpenedStreamsResumeThroughNginxAfterTheirNodeIsKilled() async throws {
        let cluster = try await Cluster(nodeArguments: ["--heartbeat-event", "--heartbeat-seconds", "1"])
        let clients = (0..<12).map {
            ResumingClient(clientID: "fetch-\($0)", baseURL: cluster.nginx.url, topics: ["feed"], post: true)
        }
        try await withDeadline("the POST clients to connect") {
            for client in clients {
                while client.nodes.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
            }
        }
        let victim = try #require(self.busiestNode(clients, of: cluster))
        let victimsClients = clients.filter { $0.nodes.last == victim.id }
        let publisher = IntervalPublisher(url: cluster.nginx.url, channels: ["feed", "broadcast"])
        try await publisher.waitForAcknowledged(more: 10)
        victim.kill(SIGKILL)
        try await publisher.waitForAcknowledged(more: 30)
        await publisher.stop()
        try await self.expectDelivered(
            publisher.acknowledged,
            to: clients,
            movedFrom: victim,
            victimsClients: victimsClients
        )
        for client in clients { await client.stop() }
        // `--heartbeat-event`: an idle stream gets `event: heartbeat`.
        let alive = try #require(cluster.nodes.first { $0.id != victim.id })
        let idle = try await TestStream(alive.url + "/api/sse/subscribe/idle")
        _ = try await idle.connected()
        let beat = try await idle.next(includingControl: true)
        #expect(beat.event == "heartbeat" && beat.data == "{}", "\(beat)")
        await idle.close()
        cluster.stop()
    }

    @Test func aTerminatedNodeDrainsTellsClientsToRetryAndExitsZero() async throws {
        // Rows outlive the test unless a node leaves: a row that is gone was removed.
        let cluster = try await Cluster(nodeArguments: [
            "--drain-retry-jitter-ms", "500", "--drain-grace-seconds", "2", "--registry-ttl-seconds", "120",
        ])
        let clients = try await self.connectClients(30, prefix: "drain", cluster: cluster)
        let victim = try #require(self.busiestNode(clients, of: cluster))
        let victimsClients = clients.filter { $0.nodes.last == victim.id }
        #expect(!victimsClients.isEmpty)

        let publisher = IntervalPublisher(url: cluster.nginx.url)
        try await publisher.waitForAcknowledged(more: 10)
        victim.kill(SIGTERM)
        // While it drains it is not ready and refuses new streams (nginx then tries
        // another node).
        try await withDeadline("the draining node to report not ready") {
            while try await TestHTTPClient.request("GET", victim.url + "/readyz").status != 503 {
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        let refused = try await TestHTTPClient.request("GET", victim.url + "/api/sse/subscribe/late")
        #expect(refused.status == 503)
        #expect(refused.body.contains(#""ok":false"#))
        let code = try await victim.waitForExit(within: .seconds(15))
        #expect(code == 0, "the drained node exited with \(code):\n\(victim.logText())")
        #expect(victim.logText().contains("fanfare.draining"))
        // It left the registry on its way out (its row would have stayed two minutes).
        #expect(try await cluster.liveNodes() == cluster.nodes.map(\.id).filter { $0 != victim.id }.sorted())
        try await publisher.waitForAcknowledged(more: 10)

        await publisher.stop()
        let acknowledged = publisher.acknowledged
        try await self.expectDelivered(acknowledged, to: clients, movedFrom: victim, victimsClients: victimsClients)
        for client in victimsClients {
            // The drain's own retry (0…500 ms), not the usual 2000 ms.
            let retry = client.retriesAtClose.first ?? -1
            #expect((0...500).contains(retry), "\(client.clientID) was told to retry after \(retry) ms")
        }
        // Jittered: the clients do not all come back at the same moment (a constant
        // retry would pass the range check above).
        let retries = Set(victimsClients.compactMap { $0.retriesAtClose.first })
        #expect(victimsClients.count >= 3)  // the busiest of three nodes has a third of 30 or more
        #expect(retries.count > 1, "every client got the same retry: \(retries)")
        for client in clients { await client.stop() }
        cluster.stop()
    }

    @Test func aRedisRestartRefusesPublishesMeanwhileAndLosesNothingAcknowledged() async throws {
        let cluster = try await Cluster()
        let clients = try await self.connectClients(12, prefix: "restart", cluster: cluster)
        // Publish to one node directly, so every refusal comes from the node, not nginx.
        let publisher = IntervalPublisher(url: cluster.nodes[0].url)
        try await publisher.waitForAcknowledged(more: 10)

        let port = cluster.redis.port
        cluster.redis.stopKeepingData()
        // Publishes meet the outage before Redis comes back.
        try await publisher.waitForRefusals(3)
        let revived = try await RedisServerProcess(
            arguments: ["--appendonly", "yes"],
            onPort: port,
            directory: cluster.redis.directory
        )
        // The nodes come back by themselves: publishing succeeds again.
        try await publisher.waitForAcknowledged(more: 20, seconds: 15)
        await publisher.stop()

        let refusals = publisher.refusals
        #expect(!refusals.isEmpty, "no publish was refused while Redis was down")
        #expect(refusals.allSatisfy { $0 == 503 }, "refusals other than 503: \(refusals)")
        let acknowledged = publisher.acknowledged
        try await waitForDelivery(clients, acknowledged: acknowledged)
        for client in clients {
            expectExactlyOnceInOrder(client, acknowledged: acknowledged)
        }

        // The history survived the restart: a client resuming from the first event gets
        // every later one.
        let cursor = TestCursor.make(["broadcast": acknowledged[0].id], channels: ["client:late-reader", "broadcast"])
        let late = try await TestStream(
            cluster.nodes[1].url + "/api/sse/subscribe/late-reader",
            headers: [("Last-Event-ID", cursor)]
        )
        var replayed: [String] = []
        while replayed.last != acknowledged.last?.id {
            replayed.append(TestCursor.position(try await late.next().id, "broadcast") ?? "?")
        }
        #expect(Set(acknowledged.dropFirst().map(\.id)).isSubset(of: replayed))
        await late.close()

        for client in clients { await client.stop() }
        cluster.nginx.stop()
        for node in cluster.nodes { node.stop() }
        revived.stop()
        cluster.redis.stop()
    }
}
