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

/// HiredisNIO against a real Sentinel topology: connections find the master through the
/// sentinels (past one that is down), never take a replica for it, and find the new master
/// after the old one is killed; the subscriber follows too.
@Suite(.enabled(if: RedisServerProcess.enabled), .timeLimit(.minutes(2)))
struct SentinelIntegrationTests {
    let logger = Logger(label: "test")
    var loop: any EventLoop { MultiThreadedEventLoopGroup.singleton.next() }

    func processID(_ connection: RedisConnection) async throws -> String? {
        let info = try await connection.send("INFO", "server").string ?? ""
        return info.split(separator: "\r\n").first { $0.hasPrefix("process_id:") }.map { String($0.dropFirst(11)) }
    }

    @Test func connectionsFindTheMasterAndFollowAFailover() async throws {
        let topology = try await SentinelTopology()
        let (down, release) = try RedisServerProcess.closedPort()
        defer { release() }
        let configuration = try RedisConfiguration(url: topology.url(after: down))
        let connection = try await RedisConnection.connect(
            configuration: configuration,
            eventLoop: self.loop,
            logger: self.logger
        )
        #expect(try await self.processID(connection) == "\(topology.primary.pid)")
        #expect(try await connection.send("SET", "k", "before") == .simpleString("OK"))

        // An announced master that is not the master (here: the replica) is passed over for
        // the one the sentinels name.
        let announcedReplica = try await RedisConnection.connect(
            configuration: configuration,
            eventLoop: self.loop,
            logger: self.logger,
            announcedMaster: RedisAddress(host: "127.0.0.1", port: topology.replica.port)
        )
        #expect(try await self.processID(announcedReplica) == "\(topology.primary.pid)")
        await announcedReplica.close()

        // A write that reaches a replica is refused, and that connection closes.
        let onReplica = try await RedisConnection.connect(
            configuration: topology.replica.configuration,
            eventLoop: self.loop,
            logger: self.logger
        )
        let refused = try await onReplica.reply(to: "SET", arguments: ["k", "x"])
        if case .error(let message) = refused {
            #expect(message.hasPrefix("READONLY"), "\(message)")
        } else {
            Issue.record("a write to a replica was accepted: \(refused)")
        }
        try await withDeadline("the replica's connection to close") { await onReplica.waitUntilClosed() }

        let (subscriber, events) = RedisSubscriber.makeWithStream(
            configuration: .init(redis: configuration),
            eventLoop: self.loop,
            logger: self.logger
        )
        let subscriberEvents = SubscriberEvents(events)
        subscriber.start()
        try await subscriber.subscribe(["after-failover"])
        #expect(try await subscriberEvents.nextReady() == false)

        topology.primary.kill()
        // Until the sentinels promote the replica, connecting fails (refused, or ROLE says
        // replica); then it reaches the new master.
        let promoted = try await withDeadline(seconds: 40, "a connection to the promoted replica") {
            while true {
                if let connection = try? await RedisConnection.connect(
                    configuration: configuration,
                    eventLoop: self.loop,
                    logger: self.logger
                ) {
                    return connection
                }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        #expect(try await self.processID(promoted) == "\(topology.replica.pid)")
        #expect(try await promoted.send("ROLE").array?.first?.string == "master")
        #expect(try await promoted.send("GET", "k") == .bulkString(ByteBuffer(string: "before")))
        #expect(try await promoted.send("SET", "k", "after") == .simpleString("OK"))

        // The subscriber reconnected through the sentinels and hears the new master.
        #expect(try await subscriberEvents.nextReady("the subscriber to reach the new master"))
        #expect(try await promoted.send("PUBLISH", "after-failover", "hello") == .integer(1))
        let (channel, payload) = try await subscriberEvents.nextMessage()
        #expect(channel == "after-failover" && String(buffer: payload) == "hello")
        await subscriber.close()
        await promoted.close()
        await connection.close()
        topology.stop()
    }

    /// A master that stops answering without closing its sockets (SIGSTOP: a hang, or a
    /// partition that leaves its clients connected) is failed over by the sentinels, and
    /// `+switch-master` moves the client and the subscriber to the new master while the old
    /// one is still there. Neither could notice by itself: the subscriber's PING is off and
    /// the command timeout is longer than the test's deadlines.
    @Test func aSwitchMasterAnnouncementMovesCommandsAndTheSubscriber() async throws {
        let topology = try await SentinelTopology()
        var configuration = try RedisConfiguration(url: topology.url())
        configuration.commandTimeout = .seconds(120)
        let client = RedisClient(configuration: configuration, eventLoop: self.loop, logger: self.logger)
        let before = try await client.send("INFO", arguments: ["server"], slot: nil).string ?? ""
        #expect(before.contains("process_id:\(topology.primary.pid)\r\n"))
        #expect(try await client.send("SET", arguments: ["k", "before"], slot: nil) == .simpleString("OK"))

        let (subscriber, events) = RedisSubscriber.makeWithStream(
            configuration: .init(redis: configuration, pingInterval: nil),
            eventLoop: self.loop,
            logger: self.logger
        )
        let subscriberEvents = SubscriberEvents(events)
        subscriber.start()
        try await subscriber.subscribe(["switched"])
        _ = try await subscriberEvents.nextReady()

        // A client with no connection yet: its first command will be connecting to the old
        // master, and hanging there, when the switch is announced.
        let cold = RedisClient(configuration: configuration, eventLoop: self.loop, logger: self.logger)
        let (switches, announced) = AsyncStream.makeStream(of: RedisSentinelWatcher.Switch.self)
        let watcher = RedisSentinelWatcher(
            sentinel: try #require(configuration.sentinel),
            master: configuration,
            eventLoop: self.loop,
            logger: self.logger
        ) { change in
            client.reconnect(to: change.new)
            cold.reconnect(to: change.new)
            subscriber.reconnect(to: change.new)
            announced.yield(change)
        }
        watcher.start()
        // Subscribed on every sentinel before the master stops (a switch announced earlier
        // would be missed).
        try await withDeadline("the watcher to subscribe on every sentinel") {
            for sentinel in topology.sentinels {
                let connection = try await RedisConnection.connect(
                    configuration: RedisConfiguration(host: "127.0.0.1", port: sentinel.port),
                    eventLoop: self.loop,
                    logger: self.logger
                )
                // A sentinel has no PUBSUB command; its client list shows the subscription.
                while try await connection.send("CLIENT", "LIST", "TYPE", "pubsub").string?.contains(" sub=1 ") != true
                {
                    try await Task.sleep(for: .milliseconds(20))
                }
                await connection.close()
            }
        }

        _ = Glibc.kill(topology.primary.pid, SIGSTOP)
        defer { _ = Glibc.kill(topology.primary.pid, SIGCONT) }
        let coldCommand = Task { try await cold.send("INFO", arguments: ["server"], slot: nil).string ?? "" }
        let change = try await withDeadline(seconds: 40, "a +switch-master from the sentinels") {
            var iterator = switches.makeAsyncIterator()
            guard let change = await iterator.next() else { throw TestFailure("the watcher stopped") }
            return change
        }
        #expect(change.old.port == topology.primary.port)
        #expect(change.new.port == topology.replica.port)

        // The old master is still stopped: what answers now is the new one.
        let after = try await withDeadline("a command on the new master") {
            try await client.send("INFO", arguments: ["server"], slot: nil).string ?? ""
        }
        #expect(after.contains("process_id:\(topology.replica.pid)\r\n"))
        let coldAnswer = try await withDeadline("the command that was connecting to the old master") {
            try await coldCommand.value
        }
        #expect(coldAnswer.contains("process_id:\(topology.replica.pid)\r\n"))
        // Announced again (every sentinel does): a connection already there is kept.
        let kept = client.connections
        client.reconnect(to: change.new)
        #expect(kept.count == 1 && client.connections.count == 1 && kept.first === client.connections.first)
        let value = try await withDeadline("a read on the new master") {
            try await client.send("GET", arguments: ["k"], slot: nil)
        }
        #expect(value == .bulkString(ByteBuffer(string: "before")))
        #expect(try await subscriberEvents.nextReady("the subscriber to resubscribe on the new master"))
        let published = try await withDeadline("a publish on the new master") {
            try await client.send("PUBLISH", arguments: ["switched", "hello"], slot: nil)
        }
        #expect(published == .integer(1))
        let (channel, received) = try await subscriberEvents.nextMessage("the message published on the new master")
        let payload = String(buffer: received)
        #expect(channel == "switched" && payload == "hello")
        await watcher.close()
        await subscriber.close()
        await client.close()
        await cold.close()
        _ = Glibc.kill(topology.primary.pid, SIGCONT)
        topology.stop()
    }

    @Test func noSentinelThatAnswersMeansAClearError() async throws {
        let (first, releaseFirst) = try RedisServerProcess.closedPort()
        let (second, releaseSecond) = try RedisServerProcess.closedPort()
        defer {
            releaseFirst()
            releaseSecond()
        }
        let configuration = try RedisConfiguration(
            url: "redis-sentinel://127.0.0.1:\(first),127.0.0.1:\(second)/fanfare"
        )
        do {
            _ = try await RedisConnection.connect(
                configuration: configuration,
                eventLoop: self.loop,
                logger: self.logger
            )
            Issue.record("connected without a sentinel")
        } catch let error as RedisClientError {
            #expect(error.code == .connectionClosed)
            #expect("\(error)".contains("no sentinel told where the master 'fanfare' is"), "\(error)")
            #expect("\(error)".contains("127.0.0.1:\(second)"), "\(error)")
        }
    }

    /// Two nodes on `redis-sentinel://` that acknowledge a publish once a replica has it:
    /// publishing goes on across a failover (refused with 503 while there is no master, or
    /// no replica of the new one yet), and every stream gets every acknowledged event once,
    /// in order, without a reset.
    @Test func nodesOnSentinelKeepEveryAcknowledgedEventAcrossAFailover() async throws {
        let topology = try await SentinelTopology(replicas: 2)
        let arguments = ["--replica-acks", "1", "--replica-ack-timeout-ms", "500"]
        let nodes = [
            try await NodeProcess(id: "sentinel-1", redis: topology.url(), arguments: arguments),
            try await NodeProcess(id: "sentinel-2", redis: topology.url(), arguments: arguments),
        ]
        let clients = (0..<6).map { ResumingClient(clientID: "failover-\($0)", baseURL: nodes[$0 % 2].url) }
        try await withDeadline("the clients to connect") {
            for client in clients {
                while client.nodes.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
            }
        }
        let publisher = IntervalPublisher(url: nodes[0].url)
        try await publisher.waitForAcknowledged(more: 10)
        topology.primary.kill()
        try await publisher.waitForRefusals(1)
        // Accepted again once the sentinels promoted the replica.
        try await publisher.waitForAcknowledged(more: 20, seconds: 40)
        await publisher.stop()
        let acknowledged = publisher.acknowledged
        #expect(publisher.refusals.allSatisfy { $0 == 503 }, "\(publisher.refusals)")
        try await waitForDelivery(clients, acknowledged: acknowledged, seconds: 30)
        try await expectEveryAcknowledgedEventKept(clients, acknowledged: acknowledged, redisURL: topology.url())
        // Each node heard the sentinels announce the new master (and moved to it then).
        try await withDeadline("each node to log the switch to the new master") {
            for node in nodes {
                while !node.logText().contains("fanfare.redis.master.switched") {
                    try await Task.sleep(for: .milliseconds(50))
                }
                #expect(
                    node.logText().contains("redis.master=127.0.0.1:\(topology.replicas[0].port)")
                        || node.logText().contains("redis.master=127.0.0.1:\(topology.replicas[1].port)")
                )
            }
        }
        for client in clients { await client.stop() }
        for node in nodes { node.stop() }
        topology.stop()
    }

    /// The issue's smallest topology: one master, one replica, three sentinels, and
    /// `--replica-acks 1`. The master is SIGKILLed and its replica promoted. With no replica
    /// left, publishes are refused with 503 (published, but confirmed by none). The old
    /// master is started again on its port, the sentinels make it a replica of the new one,
    /// and publishes are acknowledged again. Streams on both nodes have every acknowledged
    /// event once, in order.
    @Test func oneReplicaFailsOverAndAcknowledgesAgainOnceTheOldMasterRejoins() async throws {
        let topology = try await SentinelTopology(replicas: 1)
        let arguments = ["--replica-acks", "1", "--replica-ack-timeout-ms", "500"]
        let nodes = [
            try await NodeProcess(id: "one-replica-1", redis: topology.url(), arguments: arguments),
            try await NodeProcess(id: "one-replica-2", redis: topology.url(), arguments: arguments),
        ]
        let clients = (0..<4).map { ResumingClient(clientID: "one-replica-\($0)", baseURL: nodes[$0 % 2].url) }
        try await withDeadline("the clients to connect") {
            for client in clients {
                while client.nodes.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
            }
        }
        let publisher = IntervalPublisher(url: nodes[0].url)
        try await publisher.waitForAcknowledged(more: 10)
        let oldPort = topology.primary.port
        topology.primary.kill()
        try await publisher.waitForRefusals(1)
        // Promoted: every sentinel names the replica. (A sentinel still on the old
        // configuration would take the restarted, empty server for the master and make the
        // promoted replica sync from it, losing everything.)
        try await withDeadline(seconds: 40, "every sentinel to name the promoted replica") {
            for sentinel in topology.sentinels {
                while try await SentinelTopology.master(sentinel)["port"] != "\(topology.replica.port)" {
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
        }
        let rejoined = try await RedisServerProcess(arguments: ["--repl-diskless-sync-delay", "0"], onPort: oldPort)
        defer { rejoined.stop() }
        // Acknowledged again once the old master has become a replica and synced.
        try await publisher.waitForAcknowledged(more: 20, seconds: 60)
        await publisher.stop()
        #expect(publisher.refusals.allSatisfy { $0 == 503 }, "\(publisher.refusals)")
        let role = try await RedisConnection.connect(
            configuration: rejoined.configuration,
            eventLoop: self.loop,
            logger: self.logger
        )
        let replicaOf = try await role.send("INFO", "replication").string ?? ""
        #expect(
            replicaOf.contains("role:slave") && replicaOf.contains("master_port:\(topology.replica.port)\r\n"),
            "\(replicaOf)"
        )
        await role.close()
        let acknowledged = publisher.acknowledged
        try await waitForDelivery(clients, acknowledged: acknowledged, seconds: 30)
        try await expectEveryAcknowledgedEventKept(clients, acknowledged: acknowledged, redisURL: topology.url())
        for client in clients { await client.stop() }
        for node in nodes { node.stop() }
        topology.stop()
    }

    /// Asynchronous replication, made certain to lose one event: the replica is stopped
    /// (SIGSTOP) and cut off while an event goes out, the stream gets it live, the master is SIGKILLed
    /// and the replica promoted without it. The new master's history then ends before a
    /// position the stream holds: the stream is told so with `__reset`, the position is never
    /// used again for another event, and nothing published after the failover is skipped.
    @Test func aPositionTheNewMasterNeverHadIsResetNeitherReusedNorSkipped() async throws {
        let topology = try await SentinelTopology(replicas: 1)
        defer { topology.stop() }
        // The loss is the point: publishes wait for no replica (with Sentinel the default is 1).
        let node = try await NodeProcess(id: "diverge", redis: topology.url(), arguments: ["--replica-acks", "0"])
        defer { node.stop() }
        let probe = try await DivergenceProbe(node: node, clientID: "diverger")
        let kept = try #require(try await probe.publish("kept"))
        try await probe.waitForEvent(kept)
        let master = try await RedisConnection.connect(
            configuration: topology.primary.configuration,
            eventLoop: self.loop,
            logger: self.logger
        )
        #expect(try await master.send("WAIT", 1, 5_000).int == 1, "the replica does not have the first event")
        // The replica stops, and the master drops its link: the next event goes out to nobody
        // (already in the replica's socket, it would still arrive after SIGCONT).
        _ = Glibc.kill(topology.replica.pid, SIGSTOP)
        defer { _ = Glibc.kill(topology.replica.pid, SIGCONT) }  // never left stopped
        _ = try await master.send("CLIENT", "KILL", "TYPE", "replica")
        await master.close()
        let lost = try #require(try await probe.publish("lost"))
        try await probe.waitForEvent(lost)
        topology.primary.kill()
        _ = Glibc.kill(topology.replica.pid, SIGCONT)

        // Publishing works again once the sentinels promoted the replica.
        let after = try await probe.publishAfterFailover()

        let newMaster = try await RedisConnection.connect(
            configuration: try RedisConfiguration(url: topology.url()),
            eventLoop: self.loop,
            logger: self.logger
        )
        let history = try await newMaster.send("XRANGE", "fanfare:h:{broadcast}", "-", "+")
        await newMaster.close()
        let ids = (history.array ?? []).compactMap { $0.array?.first?.string }
        try probe.expectLostEventReset(kept: kept, lost: lost, after: after, history: ids)
        await probe.client.stop()
    }
}
