import NIOCore
import Testing

@testable import Fanfare

/// Every setting is checked in one place, out-of-range values are errors that name their
/// option (never clamped), and durations from the command line saturate instead of
/// overflowing.
@Suite struct ConfigurationValidationTests {
    private func refusal(_ change: (inout FanfareConfiguration) -> Void) -> String? {
        var configuration = FanfareConfiguration(nodeID: "node-1")
        change(&configuration)
        do {
            try configuration.validate()
            return nil
        } catch let error as FanfareError {
            #expect(error.code == .invalidConfiguration)
            return error.message
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    @Test func theDefaultsAreValid() throws {
        try FanfareConfiguration(nodeID: "node-1").validate()
    }

    @Test func eachOutOfRangeValueNamesItsOption() {
        let cases: [(String, (inout FanfareConfiguration) -> Void)] = [
            ("--slow-consumer-bytes must be at least 4096, not 100", { $0.slowConsumerBytes = 100 }),
            ("--heartbeat-seconds must be at least 1, not 0", { $0.heartbeatInterval = .zero }),
            ("--history-size must be at least 1, not 0", { $0.historyMaxLength = 0 }),
            ("--history-seconds must be from 0 to 315360000, not -1", { $0.historyMaxAgeSeconds = -1 }),
            ("--event-loops must be at least 1, not 0", { $0.eventLoops = 0 }),
            ("--port must be from 0 to 65535, not 70000", { $0.port = 70_000 }),
            ("--registry-ttl-seconds must be at least 2, not 1", { $0.registryTTL = .seconds(1) }),
            ("--write-delay-ms must be from 0 to 100, not 101", { $0.writeDelay = .milliseconds(101) }),
            ("--max-header-bytes must be at least 1024, not 10", { $0.limits.maxHeaderBytes = 10 }),
            ("--max-channels-per-stream must be at least 1, not 0", { $0.limits.channelsPerStream = 0 }),
            ("--replica-acks must be at least 0, not -1", { $0.replicaAcks = -1 }),
        ]
        for (sentence, change) in cases {
            #expect(self.refusal(change) == sentence)
        }
    }

    @Test func settingsThatDisagreeAreRefusedTogether() {
        let late = self.refusal {
            $0.deliveryProbeInterval = .seconds(2)
            $0.deliveryTimeout = .seconds(1)
        }
        #expect(late?.contains("the delivery timeout must be longer than the probe interval") == true)
        let wait = self.refusal {
            $0.replicaAcks = 1
            $0.replicaAckTimeout = .seconds(10)
        }
        #expect(wait?.hasPrefix("--replica-ack-timeout-ms 10000 must be at most 4000") == true)
        let badID = self.refusal { $0.nodeID = "no spaces" }
        #expect(badID?.hasPrefix("the node id must be") == true)
    }

    @Test func redisTLSOptionsNeedTLSAndEachOther() {
        // Options without TLS on would be quietly ignored: refused instead.
        let plain = self.refusal {
            $0.redisURL = "redis://127.0.0.1:6379"
            $0.redisTLS.caFile = "/etc/ca.pem"
        }
        #expect(plain?.hasPrefix("the --redis-tls-… options need TLS to Redis") == true)
        #expect(self.refusal { $0.redisTLS.enabled = true }?.hasPrefix("--redis-tls needs a Redis URL") == true)
        let half = self.refusal {
            $0.redisURL = "rediss://h"
            $0.redisTLS.certificateFile = "/etc/client.pem"
        }
        #expect(half?.hasPrefix("--redis-tls-cert-file and --redis-tls-key-file go together") == true)
        let insecure = self.refusal {
            $0.redisURL = "rediss://h"
            $0.redisTLS.insecure = true
            $0.redisTLS.caFile = "/etc/ca.pem"
        }
        #expect(insecure?.hasPrefix("--redis-tls-insecure checks no certificate") == true)
        // On by the URL's scheme or by the flag, with any topology.
        for url in ["rediss://h", "rediss-sentinel://s/m", "rediss-cluster://a,b"] {
            #expect(
                self.refusal {
                    $0.redisURL = url
                    $0.redisTLS.caFile = "/etc/ca.pem"
                } == nil
            )
        }
        #expect(
            self.refusal {
                $0.redisURL = "redis-sentinel://s/m"
                $0.redisTLS.enabled = true
            } == nil
        )
    }

    @Test func publishesWaitForAReplicaByDefaultWhereRedisFailsOver() {
        func acks(_ url: String?, _ set: Int? = nil) -> Int {
            var configuration = FanfareConfiguration(redisURL: url, nodeID: "node-1")
            configuration.replicaAcks = set
            return configuration.effectiveReplicaAcks
        }
        #expect(acks(nil) == 0)
        #expect(acks("redis://h") == 0)
        #expect(acks("rediss://h") == 0)
        for url in ["redis-sentinel://s/m", "rediss-sentinel://s/m", "redis-cluster://a,b", "rediss-cluster://a"] {
            #expect(acks(url) == 1, "\(url)")
            #expect(acks(url, 0) == 0, "\(url)")
        }
        #expect(acks("redis://h", 2) == 2)
        // The default's ack timeout is checked as a set value is.
        #expect(
            self.refusal {
                $0.redisURL = "redis-sentinel://s/m"
                $0.replicaAckTimeout = .seconds(10)
            }?.hasPrefix("--replica-ack-timeout-ms 10000 must be at most 4000") == true
        )
    }

    @Test func theReplicaCheckSaysWhatAShortageMeansOnceAChange() {
        let health = NodeHealth(checked: true, replicasWanted: 2)
        #expect(health.replicasFound == nil)
        #expect(health.updateReplicas(found: 1))
        #expect(!health.updateReplicas(found: 0))
        #expect(health.updateReplicas(found: 2))
        #expect(!health.updateReplicas(found: 3))
        #expect(
            ReplicaCheck.effect(wanted: 2, found: nil, timeoutMilliseconds: 500) == "the replicas are not checked yet"
        )
        #expect(
            ReplicaCheck.effect(wanted: 2, found: 2, timeoutMilliseconds: 500)
                == "every publish is acknowledged once 2 replicas have it, so a failover keeps it"
        )
        #expect(
            ReplicaCheck.effect(wanted: 2, found: 1, timeoutMilliseconds: 700).hasPrefix(
                "a primary has 1 of the 2 replicas a publish waits for: publishes are stored but not confirmed, each answering 503 after 700 ms"
            )
        )
    }

    @Test func durationsSaturate() {
        #expect(TimeAmount.seconds(saturating: 3) == .seconds(3))
        #expect(TimeAmount.seconds(saturating: .max) == .nanoseconds(.max))
        #expect(TimeAmount.milliseconds(saturating: .min) == .nanoseconds(.min))
        // A saturated value is still checked: a negative one is refused, a huge one is long.
        #expect(self.refusal { $0.drainTimeout = .seconds(saturating: -5) }?.hasPrefix("--drain-seconds") == true)
        #expect(self.refusal { $0.drainTimeout = .seconds(saturating: .max) } == nil)
    }
}
