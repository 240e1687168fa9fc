import Foundation
import HiredisNIO
import Logging
import NIOCore
import NIOPosix
import ServerSentEvents
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Replica acknowledgement behind Sentinel, and the credentials of sentinels and master.
extension SentinelIntegrationTests {
    /// With `--replica-acks 1` a publish is acknowledged once a replica has it; a replica
    /// that does not confirm within the bound turns the answer into a 503 that says the
    /// event was published and invites a retry with its key. The retry is acknowledged only
    /// once a replica has the first publish, on whichever node it lands: not while the
    /// replica is still stopped, even on a node whose connection wrote nothing since. And
    /// the waits hold up neither reads (a new stream's head) nor one another.
    @Test func aPublishIsAcknowledgedOnlyOnceAReplicaHasIt() async throws {
        let primary = try await RedisServerProcess.primary()
        let replica = try await RedisServerProcess.replica(of: primary)
        // 1 s: a loaded test run can keep a replica from confirming for a few hundred ms.
        let arguments = ["--replica-acks", "1", "--replica-ack-timeout-ms", "1000"]
        let node = try await NodeProcess(id: "acks", redis: primary.url, arguments: arguments)
        // A second node that writes nothing by itself (no delivery probe): its connections
        // have nothing of their own for WAIT to count.
        let quiet = try await NodeProcess(
            id: "acks-quiet",
            redis: primary.url,
            arguments: arguments + ["--delivery-probe-ms", "0"]
        )
        let stream = try await TestStream(node.url + "/api/sse/subscribe/acks?channels=orders")
        _ = try await stream.connected()
        let notify = node.url + "/api/sse/notify"
        let kept = try await TestHTTPClient.request("POST", notify, body: #"{"channel":"orders","event":"kept"}"#)
        #expect(kept.status == 200, "\(kept.body)")
        #expect(try await stream.next().event == "kept")

        // A replica that stops confirming (paused): published, not acknowledged.
        _ = Glibc.kill(replica.pid, SIGSTOP)
        defer { _ = Glibc.kill(replica.pid, SIGCONT) }  // never left stopped
        let body = #"{"channel":"orders","event":"unconfirmed","idempotencyKey":"order-7"}"#
        let started = ContinuousClock.now
        let unconfirmed = try await TestHTTPClient.request("POST", notify, body: body)
        #expect(ContinuousClock.now - started >= .milliseconds(990))
        #expect(unconfirmed.status == 503, "\(unconfirmed.body)")
        #expect(
            unconfirmed.body.contains(
                "the event was published, but only 0 of 1 replicas confirmed it within 1000 ms, so a failover could lose it: retry with the same idempotencyKey"
            ),
            "\(unconfirmed.body)"
        )
        #expect(try await stream.next().event == "unconfirmed")  // it did happen

        // Retried while the replica is still stopped, on either node: still not acknowledged.
        for url in [notify, quiet.url + "/api/sse/notify"] {
            let early = try await TestHTTPClient.request("POST", url, body: body)
            #expect(early.status == 503, "a retry was acknowledged with no replica: \(early.body)")
        }

        // Ten publishes at once: each waits for its group's WAIT, not for the nine before
        // it; and a new stream meanwhile reads its head at once, not behind the waits.
        let burst = ContinuousClock.now
        async let statuses = withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<10 {
                group.addTask {
                    try await TestHTTPClient.request(
                        "POST",
                        notify,
                        body: #"{"channel":"burst","event":"b\#(index)"}"#
                    ).status
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        try await Task.sleep(for: .milliseconds(200))
        let late = try await TestStream(node.url + "/api/sse/subscribe/late?channels=fresh")
        _ = try await late.connected()
        let opened = ContinuousClock.now - burst
        let answered = try await statuses
        let waited = ContinuousClock.now - burst
        #expect(answered.count == 10 && answered.allSatisfy { $0 == 503 }, "\(answered)")
        #expect(opened < waited, "the stream opened after \(opened), the publishes answered after \(waited)")
        // One WAIT each in a row would take ten seconds; groups take two ack timeouts.
        #expect(waited < .seconds(5), "ten publishes took \(waited)")
        await late.close()
        _ = Glibc.kill(replica.pid, SIGCONT)

        // Once the replica is back, the retry is acknowledged, and publishes nothing again.
        let retried = try await withDeadline("the retry to be acknowledged") {
            while true {
                let retried = try await TestHTTPClient.request("POST", quiet.url + "/api/sse/notify", body: body)
                if retried.status == 200 { return retried }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        #expect(retried.body.contains(#""duplicate":true"#), "\(retried.body)")
        let marker = try await TestHTTPClient.request("POST", notify, body: #"{"channel":"orders","event":"marker"}"#)
        #expect(marker.status == 200)
        #expect(try await stream.next().event == "marker")
        await stream.close()
        quiet.stop()
        node.stop()
        replica.stop()
        primary.stop()
    }

    /// The master's credentials go before the hosts and the sentinels' own in the query;
    /// a missing or wrong one of either is refused with a sentence that names neither.
    @Test func sentinelsAndTheMasterEachTakeTheirOwnCredentials() async throws {
        let topology = try await SentinelTopology(password: "master-pw-1", sentinelPassword: "sentinel-pw-2")
        let hosts = topology.sentinels.map { "127.0.0.1:\($0.port)" }.joined(separator: ",")
        let good = try RedisConfiguration(
            url: "redis-sentinel://:master-pw-1@\(hosts)/fanfare?sentinelPassword=sentinel-pw-2"
        )
        let connection = try await RedisConnection.connect(
            configuration: good,
            eventLoop: self.loop,
            logger: self.logger
        )
        #expect(try await self.processID(connection) == "\(topology.primary.pid)")
        await connection.close()
        for url in [
            "redis-sentinel://:master-pw-1@\(hosts)/fanfare",  // no sentinel password
            "redis-sentinel://:master-pw-1@\(hosts)/fanfare?sentinelPassword=wrong",
            "redis-sentinel://:wrong@\(hosts)/fanfare?sentinelPassword=sentinel-pw-2",
            "redis-sentinel://\(hosts)/fanfare?sentinelPassword=sentinel-pw-2",  // no master password
        ] {
            do {
                _ = try await RedisConnection.connect(
                    configuration: try RedisConfiguration(url: url),
                    eventLoop: self.loop,
                    logger: self.logger
                )
                Issue.record("connected with \(RedisConfiguration.redacted(url))")
            } catch {
                #expect(!"\(error)".contains("pw-"), "\(error)")
            }
        }
        topology.stop()
    }
}
