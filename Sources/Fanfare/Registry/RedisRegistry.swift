internal import FanfareAPI
internal import HiredisNIO
internal import Logging
import Synchronization

/// The registry in Redis: each node refreshes its row (info + counts per channel) through
/// `<prefix>_heartbeat` every interval (``RegistryService``) with a TTL, so a dead node
/// drops out by itself; `<prefix>_cluster`, `<prefix>_client` and `<prefix>_connections`
/// read every live row.
final class RedisRegistry: ClusterRegistry {
    private let identity: NodeIdentity
    private let hub: NodeHub
    private let bus: RedisEventBus
    private let names: RedisNames
    private let ttlMilliseconds: Int64
    private let logger: Logger
    /// Whether Redis may lack this node's counts (at first, and after a failed write):
    /// the next write replaces them all.
    private let countsLost = Mutex(true)
    /// Cluster-wide connections per channel, as last read, with when.
    private let connectionCache = Mutex<[String: (count: Int, read: ContinuousClock.Instant)]>([:])
    /// How long a channel's cluster-wide count is reused before it is read again.
    static let connectionCacheLifetime = Duration.seconds(1)

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

    /// Writes this node's row once, with the channel counts that changed since the last
    /// write (all of them after a failure, or the first time).
    func refresh() async {
        let full = self.countsLost.withLock { $0 }
        // Taken on the hub's loop; only a loop that is shutting down fails to answer.
        guard let (counts, changed) = try? await self.hub.countChanges(all: full) else { return }
        let row = (try? APIJSON.string(self.identity.row(counts))) ?? "{}"
        // "1": replace the counts with these; "2": these changed (0: the channel has none).
        let mode: RESPArgument = full ? "1" : changed.isEmpty ? "0" : "2"
        var arguments: [RESPArgument] = [
            RESPArgument(self.identity.id), RESPArgument(self.ttlMilliseconds), RESPArgument(row), mode,
        ]
        arguments.reserveCapacity(arguments.count + changed.count * 2)
        for (channel, streams) in changed {
            arguments.append(RESPArgument(channel))
            arguments.append(RESPArgument(streams))
        }
        do {
            _ = try await self.bus.fcall(
                "heartbeat",
                keys: self.rowKeys,
                slot: self.bus.registrySlot,
                arguments: arguments,
                on: self.bus.busLoop
            )
            if full { self.countsLost.withLock { $0 = false } }
        } catch {
            // Counts must be rewritten after a failure: Redis may have lost them, and the
            // changes taken for this write are gone.
            self.countsLost.withLock { $0 = true }
            // A refresh cut short by the drain is not a failure worth a warning.
            if !(error is CancellationError) {
                self.logger.warning("registry.refresh.failed", metadata: ["error": "\(error)"])
            }
        }
    }

    private var rowKeys: [RESPArgument] {
        [
            RESPArgument(self.names.nodes), RESPArgument(self.names.nodeInfo(self.identity.id)),
            RESPArgument(self.names.nodeCounts(self.identity.id)),
        ]
    }

    func snapshot() async throws -> ClusterSnapshot {
        let reply = try await self.call("cluster", [])
        guard let parts = reply.array, parts.count == 2, let rows = parts[0].array, let clients = parts[1].array else {
            throw FanfareError(.internalError, "unexpected reply from \(self.names.function("cluster"))")
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
        let items = try await self.call("client", [RESPArgument(id)]).array ?? []
        var result: [(node: String, connections: Int)] = []
        for index in stride(from: 0, to: items.count - 1, by: 2) {
            if let node = items[index].string, let count = items[index + 1].int { result.append((node, Int(count))) }
        }
        return result
    }

    /// The channel's connections on every live node, read at most once a second per
    /// channel (a publish answer may be up to that old; the rows themselves are refreshed
    /// once a second).
    func knownConnections(on channel: String) -> Int? {
        guard let cached = self.connectionCache.withLock({ $0[channel] }),
            ContinuousClock.now - cached.read < Self.connectionCacheLifetime
        else { return nil }
        return cached.count
    }

    func connections(on channel: String) async throws -> Int {
        let now = ContinuousClock.now
        if let cached = self.connectionCache.withLock({ $0[channel] }), now - cached.read < Self.connectionCacheLifetime
        {
            return cached.count
        }
        let count = Int(try await self.call("connections", [RESPArgument(channel)]).int ?? 0)
        self.connectionCache.withLock { cache in
            // Channels that were not asked for lately are forgotten, so the cache stays small.
            if cache.count > 10_000 { cache = cache.filter { now - $0.value.read < Self.connectionCacheLifetime } }
            cache[channel] = (count, now)
        }
        return count
    }

    func leave() async {
        _ = try? await self.bus.fcall(
            "leave",
            keys: self.rowKeys,
            slot: self.bus.registrySlot,
            arguments: [RESPArgument(self.identity.id)],
            on: self.bus.busLoop
        )
    }

    private func call(_ function: String, _ arguments: [RESPArgument]) async throws -> RESPValue {
        do {
            return try await self.bus.fcall(
                function,
                keys: [RESPArgument(self.names.nodes)],
                slot: self.bus.registrySlot,
                arguments: arguments,
                // The registry's commands go on the bus loop's connection, wherever asked.
                on: self.bus.busLoop
            )
        } catch {
            throw FanfareError(.unavailable, "Redis is unavailable; cluster counts cannot be read", underlying: error)
        }
    }
}
