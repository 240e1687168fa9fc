import Foundation
import Testing

/// With Sentinel (or Redis Cluster) a publish waits for one replica unless told otherwise,
/// and a node whose master has none says so, in `/readyz` and its log, with what that
/// means for its publishes; once a replica is there, it says that too.
@Suite(.enabled(if: RedisServerProcess.enabled), .timeLimit(.minutes(2)))
struct ReplicaDefaultsIntegrationTests {
    private static func readiness(_ node: NodeProcess) async throws -> [String: Any] {
        let response = try await TestHTTPClient.request("GET", node.url + "/readyz")
        return (try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any]) ?? [:]
    }

    @Test func aSentinelNodeWaitsForAReplicaByDefaultAndSaysWhenThereIsNone() async throws {
        let topology = try await SentinelTopology(replicas: 0)
        defer { topology.stop() }
        let node = try await NodeProcess(id: "no-replica", redis: topology.url())
        defer { node.stop() }
        // Checked at start: wanted 1 (the default with Sentinel), found none.
        let short = try await withDeadline("the replica check") { () -> (wanted: Int?, found: Int, effect: String?) in
            while true {
                let replicas = try await Self.readiness(node)["replicas"] as? [String: Any]
                if let found = replicas?["found"] as? Int {
                    return (replicas?["wanted"] as? Int, found, replicas?["effect"] as? String)
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        #expect(short.wanted == 1)
        #expect(short.found == 0)
        #expect(
            short.effect
                == "a primary has 0 of the 1 replica a publish waits for: publishes are stored but not confirmed, "
                + "each answering 503 after 500 ms; add replicas, or set --replica-acks 0 to accept losing "
                + "acknowledged publishes in a failover"
        )
        // Logged once, just after /readyz says it.
        try await withDeadline("the log line") {
            while !node.logText().contains("redis.replicas.missing") { try await Task.sleep(for: .milliseconds(20)) }
        }
        let unconfirmed = try await TestHTTPClient.request(
            "POST",
            node.url + "/api/sse/notify",
            body: #"{"channel":"c","event":"e"}"#
        )
        #expect(unconfirmed.status == 503, "\(unconfirmed.body)")
        #expect(unconfirmed.body.contains("published, but only 0 of 1 replicas confirmed it"), "\(unconfirmed.body)")

        // A replica joins: within the next check the node says publishes are kept, and they
        // are acknowledged.
        let replica = try await RedisServerProcess.replica(of: topology.primary)
        defer { replica.stop() }
        try await withDeadline(seconds: 30, "the node to find the replica") {
            while (try await Self.readiness(node)["replicas"] as? [String: Any])?["found"] as? Int != 1 {
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        let replicas = try await Self.readiness(node)["replicas"] as? [String: Any]
        #expect(
            replicas?["effect"] as? String
                == "every publish is acknowledged once 1 replica has it, so a failover keeps it"
        )
        let kept = try await TestHTTPClient.request(
            "POST",
            node.url + "/api/sse/notify",
            body: #"{"channel":"c","event":"e"}"#
        )
        #expect(kept.status == 200, "\(kept.body)")
    }

    @Test func oneRedisWaitsForNoReplicaAndSaysNothingOfThem() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let node = try await NodeProcess(id: "single", redis: redis.url)
        defer { node.stop() }
        #expect(try await Self.readiness(node)["replicas"] == nil)
    }
}
