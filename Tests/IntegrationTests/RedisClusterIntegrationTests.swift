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

/// HiredisNIO against a real three-primary cluster, and Fanfare nodes on it.
@Suite(.enabled(if: RedisServerProcess.enabled), .timeLimit(.minutes(2)))
struct RedisClusterIntegrationTests {
    private let loop = MultiThreadedEventLoopGroup.singleton.next()
    private let logger = Logger(label: "test")

    /// Keys in every slot range land on their own primary, pipelined per primary, and a
    /// command for a slot the map has wrong follows the MOVED reply there.
    @Test func commandsGoToTheirSlotsPrimaryAndFollowMOVED() async throws {
        let cluster = try await ClusterTopology()
        defer { cluster.stop() }
        let configuration = try RedisConfiguration(url: cluster.url)
        let client = RedisClient(configuration: configuration, eventLoop: self.loop, logger: self.logger)
        let keys = (0..<60).map { "key-\($0)" }
        let replies = await client.replies(
            to: keys.map {
                RedisClient.Command("SET", [RESPArgument($0), RESPArgument("v-\($0)")], slot: RedisClusterSlot.of($0))
            }
        )
        for reply in replies { #expect(try reply.result.get() == .simpleString("OK")) }
        let map = try await client.slotMap()
        #expect(map.primaries.count == 3)
        // Each primary holds exactly the keys of its slots.
        for primary in map.primaries {
            let connection = try await ClusterTopology.connect(primary.port)
            let size = try await connection.send("DBSIZE").int ?? -1
            await connection.close()
            let expected = keys.filter { map.primary(forSlot: RedisClusterSlot.of($0)) == primary }.count
            #expect(size == Int64(expected), "\(primary) holds \(size) keys, not \(expected)")
            #expect(expected > 0)
        }
        // A command sent for the wrong slot gets MOVED, and goes where it says.
        let key = keys[0]
        let wrongSlot = (0..<RedisClusterSlot.count).first {
            map.primary(forSlot: $0) != map.primary(forSlot: RedisClusterSlot.of(key))
        }
        let value = try await client.send("GET", arguments: [RESPArgument(key)], slot: wrongSlot)
        #expect(value.string == "v-\(key)")
        await client.close()
    }

    /// A subscriber asked for a sharded channel that another primary serves gets `MOVED`
    /// for it: the channel is let go here (reported as ended by the server, for the owner
    /// to route it again), the subscribe returns, and the connection stays up for the
    /// channels this primary does serve.
    @Test func aShardSubscriptionRefusedWithMOVEDIsLetGoAndTheConnectionStays() async throws {
        let cluster = try await ClusterTopology(replicasPerPrimary: 0)
        defer { cluster.stop() }
        let map = try await cluster.slotMap()
        let channels = try ClusterTopology.channels(onDistinctPrimariesOf: map, count: 2, prefix: "refused-")
        let home = try #require(map.primary(forSlot: RedisClusterSlot.of(channels[0])))
        let (subscriber, stream) = RedisSubscriber.makeWithStream(
            configuration: .init(redis: RedisConfiguration(host: "127.0.0.1", port: home.port)),
            eventLoop: self.loop,
            logger: self.logger
        )
        let events = SubscriberEvents(stream)
        subscriber.start()
        try await subscriber.ssubscribe([channels[0]])
        try await subscriber.ssubscribe([channels[1]])
        let seen = try await withDeadline("the refused channel to be reported") {
            var seen: [String] = []
            while true {
                let event = try await events.next()
                switch event {
                case .droppedByServer(let kind, let name):
                    seen.append("dropped \(kind) \(name)")
                    return seen
                case .disconnected(let error):
                    seen.append("disconnected \(error)")
                case .ready(let isReconnect):
                    seen.append("ready \(isReconnect)")
                case .message, .patternMessage:
                    seen.append("message")
                case .missed(let channels):
                    seen.append("missed \(channels)")
                }
            }
        }
        #expect(seen == ["ready false", "dropped shard \(channels[1])"])
        let publisher = try await ClusterTopology.connect(home.port)
        #expect(try await publisher.send("SPUBLISH", RESPArgument(channels[0]), "still") == .integer(1))
        let message = try await withDeadline("a message on the connection that stayed") {
            while true {
                if case .message(let channel, let payload) = try await events.next() {
                    return "\(channel) \(String(buffer: payload))"
                }
            }
        }
        #expect(message == "\(channels[0]) still")
        await publisher.close()
        await subscriber.close()
    }

    /// Two nodes on `redis-cluster://`: a stream on three channels, each served by another
    /// primary, gets live events on all three (sharded pub/sub); away, it misses events on
    /// each, and resuming on the other node gets exactly those, in order per channel.
    @Test func aStreamOnThreeShardsResumesExactlyOnAnotherNode() async throws {
        let cluster = try await ClusterTopology()
        defer { cluster.stop() }
        let channels = try await cluster.channelsOnDistinctPrimaries(3, prefix: "shard")
        let nodes = [
            try await NodeProcess(id: "cluster-1", redis: cluster.url),
            try await NodeProcess(id: "cluster-2", redis: cluster.url),
        ]
        defer { for node in nodes { node.stop() } }
        let query = "?channels=" + channels.joined(separator: ",")
        let first = try await TestStream(nodes[0].url + "/api/sse/subscribe/sharded" + query)
        _ = try await first.connected()
        // The registry (one slot of its own) counts the stream from the other node too.
        try await withDeadline("the other node to count the stream") {
            while true {
                let response = try await TestHTTPClient.request("GET", nodes[1].url + "/api/sse/metrics")
                let json = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any]
                if json?["totalConnections"] as? Int == 1 { return }
                try await Task.sleep(for: .milliseconds(50))
            }
        }

        func publish(_ node: Int, _ channel: String, _ event: String) async throws -> String {
            let response = try await TestHTTPClient.request(
                "POST",
                nodes[node].url + "/api/sse/notify",
                body: #"{"channel":"\#(channel)","event":"\#(event)"}"#
            )
            #expect(response.status == 200, "\(response.body)")
            let json = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any]
            return json?["id"] as? String ?? ""
        }

        var lastID = ""
        for channel in channels {
            _ = try await publish(1, channel, "live-\(channel)")
            let event = try await first.next()
            #expect(event.event == "live-\(channel)")
            lastID = event.id ?? ""
        }
        // Each channel's pub/sub channel is a shard channel of its own primary.
        let map = try await cluster.slotMap()
        for channel in channels {
            let owner = try #require(map.primary(forSlot: RedisClusterSlot.of("fanfare:c:{\(channel)}")))
            let connection = try await ClusterTopology.connect(owner.port)
            let shardChannels = try await connection.send("PUBSUB", "SHARDCHANNELS").array?.compactMap(\.string) ?? []
            await connection.close()
            #expect(shardChannels.contains("fanfare:c:{\(channel)}"), "\(owner): \(shardChannels)")
        }
        await first.close()

        var missed: [String: [String]] = [:]
        for round in 0..<5 {
            for channel in channels {
                missed[channel, default: []].append(try await publish(round % 2, channel, "missed-\(channel)"))
            }
        }
        let second = try await TestStream(
            nodes[1].url + "/api/sse/subscribe/sharded" + query,
            headers: [("Last-Event-ID", lastID)]
        )
        _ = try await second.connected()
        var replayed: [String: [String]] = [:]
        for _ in 0..<15 {
            let event = try await second.next()
            let channel = String((event.event ?? "").dropFirst("missed-".count))
            replayed[channel, default: []].append(TestCursor.position(event.id, channel) ?? "?")
        }
        #expect(replayed == missed)
        let live = try await publish(0, channels[1], "after")
        let next = try await second.next()
        #expect(next.event == "after" && TestCursor.position(next.id, channels[1]) == live)

        // `fanfare publish --redis redis-cluster://…` reaches each channel's primary too.
        let executable = try #require(NodeProcess.executable)
        for channel in channels {
            let log = FileManager.default.temporaryDirectory.appendingPathComponent("fanfare-cli-\(UUID()).log").path
            defer { try? FileManager.default.removeItem(atPath: log) }
            let pid = try RedisServerProcess.spawn(
                [executable, "publish", "--redis", cluster.url, "--channel", channel, "--event", "cli-\(channel)"],
                output: log
            )
            let code = try await RedisServerProcess.waitForExit(pid, "fanfare publish", within: .seconds(30))
            #expect(code == 0, "\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            #expect(try await second.next().event == "cli-\(channel)")
        }
        await second.close()
    }

    /// One primary's subscriber connection is killed: the node catches up the channels
    /// of that primary only. (Before, any shard reconnect read history for every channel of
    /// the node, a `client:<id>` channel per client among them.) Probes are off and nothing
    /// is published, so a history read on another primary shows as a function call there.
    @Test func aShardReconnectCatchesUpThatShardsChannelsOnly() async throws {
        let cluster = try await ClusterTopology(replicasPerPrimary: 0)
        defer { cluster.stop() }
        // No replicas here: publishes wait for none (the default with a cluster is 1).
        let node = try await NodeProcess(
            id: "shards",
            redis: cluster.url,
            arguments: ["--delivery-probe-ms", "0", "--replica-acks", "0"]
        )
        defer { node.stop() }
        let map = try await cluster.slotMap()
        let registry = try #require(map.primary(forSlot: RedisClusterSlot.of("fanfare:{registry}:nodes")))
        // Streams on channels of every primary.
        var streams: [TestStream] = []
        for index in 0..<12 {
            let stream = try await TestStream(
                node.url + "/api/sse/subscribe/shard-client-\(index)?channels=topic-\(index)"
            )
            _ = try await stream.connected()
            streams.append(stream)
        }
        // The registry's primary (whose function calls the heartbeat makes anyway) loses
        // its subscriber connection.
        func calls(_ address: RedisAddress) async throws -> Int {
            let connection = try await ClusterTopology.connect(address.port)
            defer { Task { await connection.close() } }
            let stats = try await connection.send("INFO", "commandstats").string ?? ""
            let line = stats.split(whereSeparator: \.isNewline).first { $0.hasPrefix("cmdstat_fcall:") } ?? ""
            return Int(line.split(separator: "=").dropFirst().first?.split(separator: ",").first ?? "") ?? 0
        }
        let others = map.primaries.filter { $0 != registry }
        try await Task.sleep(for: .milliseconds(500))
        var before: [RedisAddress: Int] = [:]
        for address in others { before[address] = try await calls(address) }
        let victim = try await ClusterTopology.connect(registry.port)
        let killed = try await victim.send("CLIENT", "KILL", "TYPE", "pubsub").int ?? 0
        await victim.close()
        #expect(killed == 1)
        try await withDeadline("the node to catch the shard up") {
            while !node.logText().contains("redis.subscriber.resubscribed") {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        try await Task.sleep(for: .milliseconds(500))
        for address in others {
            let after = try await calls(address)
            #expect(after == before[address], "\(address) was read: \(before[address] ?? -1) -> \(after) calls")
        }
        // And the shard's streams still get their events.
        for (index, stream) in streams.enumerated() {
            let response = try await TestHTTPClient.request(
                "POST",
                node.url + "/api/sse/notify",
                body: #"{"channel":"topic-\#(index)","event":"after"}"#
            )
            #expect(response.status == 200)
            #expect(try await stream.next().event == "after")
            await stream.close()
        }
    }

    /// Two nodes on a cluster whose primaries have two replicas each, acknowledging a publish
    /// once a replica has it: the primary of the broadcast channel is SIGKILLed and one of its
    /// replicas promoted. Publishing is refused only until then, and every stream on either
    /// node gets every acknowledged event once, in order (a `__reset` only for a position
    /// the new primary does not have).
    @Test func aKilledPrimaryLosesNoAcknowledgedEvent() async throws {
        let cluster = try await ClusterTopology(primaries: 3, replicasPerPrimary: 2)
        defer { cluster.stop() }
        let arguments = ["--replica-acks", "1", "--replica-ack-timeout-ms", "500"]
        let nodes = [
            try await NodeProcess(id: "shard-1", redis: cluster.url, arguments: arguments),
            try await NodeProcess(id: "shard-2", redis: cluster.url, arguments: arguments),
        ]
        defer { for node in nodes { node.stop() } }
        // Events on the broadcast channel and on topics of the other primaries.
        let topics = try await cluster.channelsOnDistinctPrimaries(3, prefix: "failover-topic-")
        let clients = (0..<4).map {
            ResumingClient(clientID: "shard-failover-\($0)", baseURL: nodes[$0 % 2].url, topics: topics)
        }
        try await withDeadline("the clients to connect") {
            for client in clients {
                while client.nodes.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
            }
        }
        let publisher = IntervalPublisher(url: nodes[0].url, channels: ["broadcast"] + topics)
        try await publisher.waitForAcknowledged(more: 10)
        let map = try await cluster.slotMap()
        let owner = try #require(map.primary(forSlot: RedisClusterSlot.of("fanfare:h:{broadcast}")))
        let victim = try #require(cluster.servers.first { $0.port == owner.port })
        victim.kill()
        try await publisher.waitForRefusals(1)
        try await publisher.waitForAcknowledged(more: 40, seconds: 40)
        await publisher.stop()
        #expect(publisher.refusals.allSatisfy { $0 == 503 }, "\(publisher.refusals)")
        #expect(Set(publisher.acknowledged.map(\.channel)).count == 4)
        try await waitForDelivery(clients, acknowledged: publisher.acknowledged, seconds: 30)
        try await expectEveryAcknowledgedEventKept(clients, acknowledged: publisher.acknowledged, redisURL: cluster.url)
        for client in clients { await client.stop() }
    }

    /// Asynchronous replication in a cluster, made certain to lose one event (the setting
    /// is off): the broadcast channel's replica is stopped (SIGSTOP) and its primary drops
    /// the link, an event goes out and the stream gets it live, the primary is SIGKILLed and
    /// the replica promoted without it. The stream is told with `__reset`; every later
    /// position is new, and every later event arrives, in order.
    @Test func aDivergedShardResetsItsStreamAndSkipsNothingAfter() async throws {
        let cluster = try await ClusterTopology(primaries: 3, replicasPerPrimary: 1)
        defer { cluster.stop() }
        // The loss is the point: publishes wait for no replica (with a cluster the default is 1).
        let node = try await NodeProcess(id: "shard-diverge", redis: cluster.url, arguments: ["--replica-acks", "0"])
        defer { node.stop() }
        let probe = try await DivergenceProbe(node: node, clientID: "shard-diverger")
        let kept = try #require(try await probe.publish("kept"))
        try await probe.waitForEvent(kept)

        let slot = RedisClusterSlot.of("fanfare:h:{broadcast}")
        let owner = try #require(try await cluster.slotMap().primary(forSlot: slot))
        let primary = try #require(cluster.servers.first { $0.port == owner.port })
        var replica: RedisServerProcess?
        for server in cluster.servers where server.port != owner.port {
            let connection = try await ClusterTopology.connect(server.port)
            let info = try await connection.send("INFO", "replication").string ?? ""
            await connection.close()
            if info.contains("master_port:\(owner.port)\r\n") { replica = server }
        }
        let stopped = try #require(replica, "no replica of \(owner)")
        let master = try await ClusterTopology.connect(owner.port)
        #expect(try await master.send("WAIT", 1, 5_000).int == 1, "the replica does not have the first event")
        _ = Glibc.kill(stopped.pid, SIGSTOP)
        // Whatever fails below, it is not left stopped (a stopped server ignores SIGTERM).
        defer { _ = Glibc.kill(stopped.pid, SIGCONT) }
        _ = try await master.send("CLIENT", "KILL", "TYPE", "replica")
        await master.close()
        let lost = try #require(try await probe.publish("lost"))
        try await probe.waitForEvent(lost)
        primary.kill()
        _ = Glibc.kill(stopped.pid, SIGCONT)

        // Publishing works again once the cluster promoted the replica.
        let after = try await probe.publishAfterFailover()

        let reader = RedisClient(
            configuration: try RedisConfiguration(url: cluster.url(excluding: owner.port)),
            eventLoop: self.loop,
            logger: self.logger
        )
        let history = try await reader.send(
            "XRANGE",
            arguments: ["fanfare:h:{broadcast}", "-", "+"],
            slot: slot
        )
        #expect(try await reader.slotMap().primary(forSlot: slot)?.port == stopped.port)
        await reader.close()
        let ids = (history.array ?? []).compactMap { $0.array?.first?.string }
        try probe.expectLostEventReset(kept: kept, lost: lost, after: after, history: ids)
        await probe.client.stop()
    }

    /// `redis-cli --cluster reshard` itself, under load: it moves the lowest slots of the
    /// broadcast channel's primary, up to and including that channel's, to another primary
    /// (thousands of slots, one after another, with the registry's among them when it is
    /// there), while a publisher publishes to the channel every 50 ms. Every acknowledged
    /// event reaches every stream once, in order, without a reset, and the slot ends on the
    /// new primary.
    @Test func aReshardByRedisCLIUnderLoadLosesNothing() async throws {
        let cluster = try await ClusterTopology(primaries: 3, replicasPerPrimary: 0)
        defer { cluster.stop() }
        let load = try await MigrationLoad(cluster: cluster, prefix: "cli-reshard")
        defer { load.stop() }
        let publisher = load.publisher

        let (slot, map, from, to, sourceID, targetID) = try await MigrationLoad.ends(in: cluster)
        // redis-cli takes the source's slots from the lowest up.
        let count = (0...slot).filter { map.primary(forSlot: $0) == from }.count
        let before = publisher.acknowledged.count
        try await ClusterTopology.redisCLI(
            [
                "--cluster", "reshard", "127.0.0.1:\(from.port)", "--cluster-from", sourceID, "--cluster-to", targetID,
                "--cluster-slots", "\(count)", "--cluster-yes",
            ],
            within: .seconds(90)
        )
        let during = publisher.acknowledged.count - before
        #expect(during >= 5, "only \(during) publishes were acknowledged while redis-cli moved \(count) slots")
        try await load.finish(cluster: cluster, slot: slot, movedTo: to)
    }

    /// The broadcast channel's slot migrated to another primary while a publisher publishes
    /// to it every 50 ms, the way `redis-cli --cluster reshard` migrates a slot: IMPORTING
    /// and MIGRATING, its keys moved a batch at a time with MIGRATE (meanwhile a publish for
    /// a moved key gets ASK), then the slot given to the new primary (MOVED, and the old one
    /// ends the sharded subscriptions). Every acknowledged event reaches every stream once,
    /// in order, without a reset.
    @Test func aSlotMigratedUnderLoadLosesNothing() async throws {
        let cluster = try await ClusterTopology(primaries: 3, replicasPerPrimary: 0)
        defer { cluster.stop() }
        let load = try await MigrationLoad(cluster: cluster, prefix: "reshard")
        defer { load.stop() }
        let publisher = load.publisher

        let (slot, map, from, to, sourceID, targetID) = try await MigrationLoad.ends(in: cluster)
        let source = try await ClusterTopology.connect(from.port)
        let target = try await ClusterTopology.connect(to.port)
        _ = try await target.send("CLUSTER", "SETSLOT", RESPArgument(slot), "IMPORTING", RESPArgument(sourceID))
        _ = try await source.send("CLUSTER", "SETSLOT", RESPArgument(slot), "MIGRATING", RESPArgument(targetID))
        var moved = 0
        while true {
            let keys = try await source.send("CLUSTER", "GETKEYSINSLOT", RESPArgument(slot), 1).array ?? []
            guard !keys.isEmpty else { break }
            _ = try await source.send(
                "MIGRATE",
                arguments: ["127.0.0.1", RESPArgument(to.port), "", 0, 5_000, "KEYS"]
                    + keys.compactMap(\.bytes).map {
                        RESPArgument($0)
                    }
            )
            moved += keys.count
            // Publishing goes on between the batches (and against a half-moved slot).
            try await publisher.waitForAcknowledged(more: 3)
        }
        #expect(moved > 0, "the slot had no keys to move")
        try await publisher.waitForAcknowledged(more: 5)
        for primary in map.primaries {
            let connection = try await ClusterTopology.connect(primary.port)
            _ = try await connection.send("CLUSTER", "SETSLOT", RESPArgument(slot), "NODE", RESPArgument(targetID))
            await connection.close()
        }
        await source.close()
        await target.close()
        try await load.finish(cluster: cluster, slot: slot, movedTo: to)
    }
}
