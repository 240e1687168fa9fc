internal import FanfareAPI
internal import HiredisNIO
internal import Logging
import Synchronization

/// The registry in Redis: each node refreshes its row (info + counts per channel) through
/// `fanfare_heartbeat` every interval (``RegistryService``) with a TTL, so a dead node
/// drops out by itself;
/// `fanfare_cluster` and `fanfare_client` read every live row.
final class RedisRegistry: ClusterRegistry {
    private let identity: NodeIdentity
    private let hub: NodeHub
    private let bus: RedisEventBus
    private let names: RedisNames
    private let ttlMilliseconds: Int64
    private let logger: Logger
    /// The counts version last written; counts are rewritten only when it changed.
    private let writtenVersion = Mutex<Int?>(nil)

    init(
        identity: NodeIdentity,
        hub: NodeHub,
        bus: RedisEventBus,
        names: RedisNames,
        ttlMilliseconds: Int64,
        logger: Logger
    ) {
        self.identity = identity
        self.hub = hub
        self.bus = bus
        self.names = names
        self.ttlMilliseconds = ttlMilliseconds
        self.logger = logger
    }

    /// Writes this node's row once.
    func refresh() async {
        let counts = self.hub.snapshot()
        let replace = self.writtenVersion.withLock { $0 } != counts.version
        let row = (try? APIJSON.string(self.identity.row(counts))) ?? "{}"
        var arguments: [RESPArgument] = [
            "fanfare_heartbeat", 3, RESPArgument(self.names.nodes), RESPArgument(self.names.nodeInfo(self.identity.id)),
            RESPArgument(self.names.nodeCounts(self.identity.id)), RESPArgument(self.identity.id),
            RESPArgument(self.ttlMilliseconds), RESPArgument(row), replace ? "1" : "0",
        ]
        if replace {
            arguments.reserveCapacity(arguments.count + counts.channels.count * 2)
            for (channel, count) in counts.channels {
                arguments.append(RESPArgument(channel))
                arguments.append(RESPArgument(count))
            }
        }
        do {
            _ = try await self.bus.fcall(arguments)
            if replace { self.writtenVersion.withLock { $0 = counts.version } }
        } catch {
            // Counts must be rewritten after a failure: Redis may have lost them.
            self.writtenVersion.withLock { $0 = nil }
            // A refresh cut short by the drain is not a failure worth a warning.
            if !(error is CancellationError) {
                self.logger.warning("registry.refresh.failed", metadata: ["error": "\(error)"])
            }
        }
    }

    func snapshot() async throws -> ClusterSnapshot {
        let reply = try await self.call("fanfare_cluster", [RESPArgument(self.names.prefix)])
        guard let parts = reply.array, parts.count == 2, let rows = parts[0].array, let clients = parts[1].array else {
            throw FanfareError(.internalError, "unexpected reply from fanfare_cluster")
        }
        var nodes: [NodeRow] = []
        for index in stride(from: 0, to: rows.count - 1, by: 2) {
            guard let text = rows[index].string, var row = try? APIJSON.decode(NodeRow.self, from: Array(text.utf8))
            else { continue }
            if let seen = rows[index + 1].int { row.lastSeen = seen }
            nodes.append(row)
        }
        var perClient: [String: Int] = [:]
        for index in stride(from: 0, to: clients.count - 1, by: 2) {
            if let id = clients[index].string, let count = clients[index + 1].int { perClient[id] = Int(count) }
        }
        return ClusterSnapshot(nodes: nodes.sorted { $0.id < $1.id }, clients: perClient)
    }

    func client(_ id: String) async throws -> [(node: String, connections: Int)] {
        let reply = try await self.call("fanfare_client", [RESPArgument(self.names.prefix), RESPArgument(id)])
        let items = reply.array ?? []
        var result: [(node: String, connections: Int)] = []
        for index in stride(from: 0, to: items.count - 1, by: 2) {
            if let node = items[index].string, let count = items[index + 1].int { result.append((node, Int(count))) }
        }
        return result
    }

    func leave() async {
        _ = try? await self.bus.fcall(
            [
                "fanfare_leave", 3, RESPArgument(self.names.nodes), RESPArgument(self.names.nodeInfo(self.identity.id)),
                RESPArgument(self.names.nodeCounts(self.identity.id)), RESPArgument(self.identity.id),
            ]
        )
    }

    private func call(_ function: String, _ arguments: [RESPArgument]) async throws -> RESPValue {
        do {
            return try await self.bus.fcall([RESPArgument(function), 1, RESPArgument(self.names.nodes)] + arguments)
        } catch {
            throw FanfareError(.unavailable, "Redis is unavailable; cluster counts cannot be read", underlying: error)
        }
    }
}
