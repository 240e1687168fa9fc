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

/// A Redis Cluster on loopback, as `redis-cli --cluster create` makes it: `primaries`
/// servers serving the slots, each with `replicasPerPrimary` replicas. Stopped (every
/// server) by ``stop()``. With `tls`, every server also speaks TLS on a port of its own
/// (``tlsPorts``), the cluster bus and replication too, and answers a TLS client's
/// `CLUSTER SLOTS` with those ports.
struct ClusterTopology {
    let servers: [RedisServerProcess]
    let tlsPorts: [Int]

    init(
        primaries: Int = 3,
        replicasPerPrimary: Int = 1,
        tls: RedisTLSIntegrationTests.Certificates? = nil
    ) async throws {
        var servers: [RedisServerProcess] = []
        var tlsPorts: [Int] = []
        do {
            for _ in 0..<(primaries * (1 + replicasPerPrimary)) {
                // The cluster bus on a port of its own from the tests' range (by default it
                // would be the port plus 10,000, which nothing reserved).
                let busPort = try RedisServerProcess.freePort()
                var arguments = [
                    "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port",
                    "\(busPort)",
                    "--cluster-node-timeout", "2000",
                ]
                if let tls {
                    let tlsPort = try RedisServerProcess.freePort()
                    tlsPorts.append(tlsPort)
                    arguments += [
                        "--tls-port", "\(tlsPort)", "--tls-cluster", "yes", "--tls-replication", "yes",
                        "--tls-cert-file", tls.serverCertificate, "--tls-key-file", tls.serverKey,
                        "--tls-ca-cert-file", tls.ca, "--tls-auth-clients", "no",
                    ]
                }
                servers.append(try await RedisServerProcess(arguments: arguments))
            }
            self.servers = servers
            self.tlsPorts = tlsPorts
            try await self.create(replicasPerPrimary: replicasPerPrimary)
            try await self.waitUntilFormed(primaries: primaries)
        } catch {
            for server in servers { server.stop() }
            throw error
        }
    }

    /// `redis-cli --cluster create` over every server; it names the first ones primaries.
    private func create(replicasPerPrimary: Int) async throws {
        try await Self.redisCLI(
            ["--cluster", "create"] + self.servers.map { "127.0.0.1:\($0.port)" } + [
                "--cluster-replicas", "\(replicasPerPrimary)", "--cluster-yes",
            ]
        )
    }

    /// Runs `redis-cli` with `arguments` to its end (within `limit`); a failure carries its output.
    static func redisCLI(_ arguments: [String], within limit: Duration = .seconds(30)) async throws {
        let redisCLI = URL(fileURLWithPath: RedisServerProcess.executable ?? "/usr/bin/redis-server")
            .deletingLastPathComponent().appendingPathComponent("redis-cli").path
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("fanfare-cluster-\(UUID()).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let what = "redis-cli \(arguments.prefix(2).joined(separator: " "))"
        let pid = try RedisServerProcess.spawn([redisCLI] + arguments, output: log)
        let code = try await RedisServerProcess.waitForExit(pid, what, within: limit)
        guard code == 0 else {
            throw TestFailure("\(what) failed (\(code)): \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }
    }

    /// Until every server says `cluster_state:ok` and sees `primaries` primaries with all
    /// slots, and every replica is in sync.
    private func waitUntilFormed(primaries: Int) async throws {
        try await withDeadline(seconds: 30, "the cluster to form") {
            for server in self.servers {
                while true {
                    let connection = try await Self.connect(server.port)
                    let info = try await connection.send("CLUSTER", "INFO").string ?? ""
                    let slots = try await connection.send("CLUSTER", "SLOTS")
                    let replication = try await connection.send("INFO", "replication").string ?? ""
                    await connection.close()
                    let map = try? RedisClusterSlotMap(slots: slots, askedHost: "127.0.0.1")
                    let synced = replication.contains("role:master") || replication.contains("master_link_status:up")
                    if info.contains("cluster_state:ok"), map?.coversEverySlot == true,
                        map?.primaries.count == primaries, synced
                    {
                        break
                    }
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
        }
    }

    static func connect(_ port: Int) async throws -> RedisConnection {
        try await RedisConnection.connect(
            configuration: RedisConfiguration(host: "127.0.0.1", port: port),
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
            logger: Logger(label: "test")
        )
    }

    /// A `redis-cluster://` URL with two of the servers as seeds.
    var url: String { "redis-cluster://127.0.0.1:\(self.servers[0].port),127.0.0.1:\(self.servers[1].port)" }

    /// A `rediss-cluster://` URL with two of the servers' TLS ports as seeds.
    var tlsURL: String { "rediss-cluster://127.0.0.1:\(self.tlsPorts[0]),127.0.0.1:\(self.tlsPorts[1])" }

    /// A URL whose seeds leave out the server on `port` (one that was killed).
    func url(excluding port: Int) -> String {
        "redis-cluster://"
            + self.servers.filter { $0.port != port }.map { "127.0.0.1:\($0.port)" }.joined(separator: ",")
    }

    /// The slot map as the first server that answers sees it.
    func slotMap() async throws -> RedisClusterSlotMap {
        let connection = try await Self.connect(self.servers[0].port)
        defer { Task { await connection.close() } }
        return try RedisClusterSlotMap(slots: try await connection.send("CLUSTER", "SLOTS"), askedHost: "127.0.0.1")
    }

    /// `count` channel names, each of whose keys (`fanfare:h:{<name>}`) a different primary
    /// serves.
    func channelsOnDistinctPrimaries(_ count: Int, prefix: String) async throws -> [String] {
        try Self.channels(onDistinctPrimariesOf: try await self.slotMap(), count: count, prefix: prefix)
    }

    /// `count` channel names `<prefix><n>` whose keys distinct primaries of `map` serve.
    static func channels(
        onDistinctPrimariesOf map: RedisClusterSlotMap,
        count: Int,
        prefix: String
    ) throws
        -> [String]
    {
        var chosen: [String] = []
        var owners: Set<RedisAddress> = []
        for index in 0..<10_000 where chosen.count < count {
            let name = "\(prefix)\(index)"
            guard let owner = map.primary(forSlot: RedisClusterSlot.of("fanfare:h:{\(name)}")),
                owners.insert(owner).inserted
            else { continue }
            chosen.append(name)
        }
        guard chosen.count == count else { throw TestFailure("the cluster has fewer than \(count) primaries") }
        return chosen
    }

    func stop() {
        for server in self.servers { server.stop() }
    }
}

/// The load a slot migration runs under: two nodes on the cluster, four resuming clients on
/// them, and a publisher on the broadcast channel every 50 ms.
struct MigrationLoad {
    let nodes: [NodeProcess]
    let clients: [ResumingClient]
    let publisher: IntervalPublisher

    /// Once every client is connected and ten publishes were acknowledged.
    init(cluster: ClusterTopology, prefix: String) async throws {
        let nodes = [
            // Its clusters have no replicas: publishes wait for none (the default is 1).
            try await NodeProcess(id: "\(prefix)-1", redis: cluster.url, arguments: ["--replica-acks", "0"]),
            try await NodeProcess(id: "\(prefix)-2", redis: cluster.url, arguments: ["--replica-acks", "0"]),
        ]
        // Events on the channel that moves and on topics of every primary.
        let topics = try await cluster.channelsOnDistinctPrimaries(3, prefix: "\(prefix)-topic-")
        let clients = (0..<4).map {
            ResumingClient(clientID: "\(prefix)-\($0)", baseURL: nodes[$0 % 2].url, topics: topics)
        }
        try await withDeadline("the clients to connect") {
            for client in clients {
                while client.nodes.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
            }
        }
        let publisher = IntervalPublisher(url: nodes[0].url, channels: ["broadcast"] + topics)
        try await publisher.waitForAcknowledged(more: 10)
        (self.nodes, self.clients, self.publisher) = (nodes, clients, publisher)
    }

    /// Publishing goes on for twenty more and stops. Then `slot` is `to`'s, no publish was
    /// refused, and every stream has every acknowledged event once, in order, without a reset.
    func finish(cluster: ClusterTopology, slot: Int, movedTo to: RedisAddress) async throws {
        try await self.publisher.waitForAcknowledged(more: 20)
        await self.publisher.stop()
        #expect(try await cluster.slotMap().primary(forSlot: slot) == to)
        #expect(self.publisher.refusals.isEmpty, "publishes were refused during the move: \(self.publisher.refusals)")
        try await waitForDelivery(self.clients, acknowledged: self.publisher.acknowledged, seconds: 30)
        for client in self.clients { expectExactlyOnceInOrder(client, acknowledged: self.publisher.acknowledged) }
        for client in self.clients { await client.stop() }
    }

    func stop() {
        for node in self.nodes { node.stop() }
    }

    /// The broadcast channel's slot, the map, the primary serving it, another primary to
    /// move it to, and their cluster node ids.
    static func ends(
        in cluster: ClusterTopology
    ) async throws -> (
        slot: Int, map: RedisClusterSlotMap, from: RedisAddress, to: RedisAddress, sourceID: String, targetID: String
    ) {
        let slot = RedisClusterSlot.of("fanfare:h:{broadcast}")
        let map = try await cluster.slotMap()
        let from = try #require(map.primary(forSlot: slot))
        let to = try #require(map.primaries.first { $0 != from })
        var ids: [String] = []
        for primary in [from, to] {
            let connection = try await ClusterTopology.connect(primary.port)
            let id = try await connection.send("CLUSTER", "MYID").string
            await connection.close()
            ids.append(try #require(id))
        }
        return (slot, map, from, to, ids[0], ids[1])
    }
}
