import Fanfare
import Foundation
import HiredisNIO
import Logging
import NIOCore
import NIOPosix
import ServerSentEvents
import Testing

extension RedisTLSIntegrationTests {
    /// `rediss-sentinel://` through a failover: a master and its replica speak TLS only
    /// (replication too), the sentinel is asked to fail over, the node follows the sentinel's
    /// announcement over TLS to the promoted replica, and every acknowledged event is kept and
    /// reaches each stream once, in order (publishes in the gap get 503; one that reached a
    /// stream from the old master and was lost with it comes with `__reset`).
    @Test func aFailoverBetweenTLSServersLosesNoAcknowledgedEvent() async throws {
        let certificates = try await Certificates.make()
        defer { certificates.remove() }
        let tls = [
            "--tls-cert-file", certificates.serverCertificate, "--tls-key-file", certificates.serverKey,
            "--tls-ca-cert-file", certificates.ca, "--tls-auth-clients", "no", "--tls-replication", "yes",
        ]
        let masterTLSPort = try RedisServerProcess.freePort()
        let master = try await RedisServerProcess(arguments: ["--tls-port", "\(masterTLSPort)"] + tls)
        defer { master.stop() }
        let replicaTLSPort = try RedisServerProcess.freePort()
        let replica = try await RedisServerProcess(
            arguments: [
                "--tls-port", "\(replicaTLSPort)", "--replica-announce-port", "\(replicaTLSPort)",
                "--replicaof", "127.0.0.1", "\(masterTLSPort)",
            ] + tls
        )
        defer { replica.stop() }
        let logger = Logger(label: "test")
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let onReplica = try await RedisConnection.connect(
            configuration: replica.configuration,
            eventLoop: loop,
            logger: logger
        )
        try await withDeadline(seconds: 20, "the replica to follow its master over TLS") {
            while !(try await onReplica.send("INFO", "replication").string ?? "").contains("master_link_status:up") {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        await onReplica.close()
        let (sentinel, sentinelTLSPort) = try await Self.sentinel(
            certificates,
            monitoring: master,
            masterPort: masterTLSPort
        )
        defer { sentinel.stop() }
        var configuration = try Self.configuration(port: masterTLSPort, tls: RedisTLSSettings(caFile: certificates.ca))
        configuration.redisURL = "rediss-sentinel://127.0.0.1:\(sentinelTLSPort)/fanfare"
        #expect(configuration.effectiveReplicaAcks == 1)
        let node = try await RunningNode(configuration: configuration)
        let url = "http://127.0.0.1:\(node.address.port ?? 0)"
        let clients = (0..<2).map { ResumingClient(clientID: "tls-failover-\($0)", baseURL: url) }
        try await withDeadline("the clients to connect") {
            for client in clients {
                while client.nodes.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
            }
        }
        let publisher = IntervalPublisher(url: url)
        try await publisher.waitForAcknowledged(more: 10)
        // The sentinel is asked (on its plain port) to promote the replica.
        let asking = try await RedisConnection.connect(
            configuration: RedisConfiguration(host: "127.0.0.1", port: sentinel.port),
            eventLoop: loop,
            logger: logger
        )
        #expect(try await asking.send("SENTINEL", "FAILOVER", "fanfare") == .simpleString("OK"))
        try await withDeadline(seconds: 20, "the sentinel to name the replica") {
            while try await asking.send("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "fanfare").array?.last?.string
                != "\(replicaTLSPort)"
            {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        await asking.close()
        // Acknowledged again once the old master follows the new one (over TLS too).
        try await publisher.waitForAcknowledged(more: 20, seconds: 40)
        await publisher.stop()
        let acknowledged = publisher.acknowledged
        #expect(publisher.refusals.allSatisfy { $0 == 503 }, "\(publisher.refusals)")
        try await waitForDelivery(clients, acknowledged: acknowledged, seconds: 30)
        // Read on the new master's plain port: the check's own client speaks no TLS.
        try await expectEveryAcknowledgedEventKept(
            clients,
            acknowledged: acknowledged,
            redisURL: "redis://127.0.0.1:\(replica.port)"
        )
        for client in clients { await client.stop() }
        await node.shutdown()
    }
}
