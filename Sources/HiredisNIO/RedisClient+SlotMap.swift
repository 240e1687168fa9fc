internal import Logging
internal import NIOCore
import Synchronization

/// The slot map of a ``RedisClient``: asked of the cluster, shared by concurrent callers,
/// and followed when Sentinel names a new master.
extension RedisClient {
    /// The current slot map; asks for one when there is none yet.
    public func slotMap() async throws -> RedisClusterSlotMap {
        if let map = self.state.withLock({ $0.map }) { return map }
        return try await self.refresh()
    }

    /// The current slot map without asking, `nil` when none is known yet.
    public var knownSlotMap: RedisClusterSlotMap? { self.state.withLock { $0.map } }

    func refreshInBackground() {
        Task { _ = try? await self.refresh() }
    }

    /// Asks the cluster for its slot map now (callers meanwhile share the one request);
    /// for a lone server, the fixed map.
    @discardableResult
    public func refresh() async throws -> RedisClusterSlotMap {
        guard let seeds = self.configuration.clusterSeeds else { return try await self.slotMap() }
        let (future, promise) = self.state.withLock {
            state -> (EventLoopFuture<RedisClusterSlotMap>, EventLoopPromise<RedisClusterSlotMap>?) in
            if let refreshing = state.refreshing { return (refreshing, nil) }
            let promise = self.eventLoop.makePromise(of: RedisClusterSlotMap.self)
            state.refreshing = promise.futureResult
            return (promise.futureResult, promise)
        }
        if let promise {
            let known = self.state.withLock { $0.map?.primaries ?? [] }
            var candidates = known
            for seed in seeds where !candidates.contains(seed) { candidates.append(seed) }
            var failures: [String] = []
            // A TLS failure is kept whole: its sentence is what the operator needs.
            var tlsFailure: RedisClientError?
            var found: RedisClusterSlotMap?
            for address in candidates {
                do {
                    let map = try await self.askForSlots(address)
                    guard map.coversEverySlot || address == candidates.last else {
                        failures.append("\(address): not every slot has a primary")
                        continue
                    }
                    found = map
                    break
                } catch {
                    failures.append("\(address): \(error)")
                    if tlsFailure == nil, let error = error as? RedisClientError, error.isTLSFailure {
                        tlsFailure = error
                    }
                }
            }
            if let found {
                let (dropped, abandoned) = self.state.withLock { state in
                    let previous = state.map
                    state.map = found
                    state.refreshing = nil
                    let taken = state.takeLinks { address, _ in !found.primaries.contains(address) }
                    if let previous, previous.primaries != found.primaries {
                        self.logger.info(
                            "redis.cluster.primaries",
                            metadata: [
                                "redis.primaries": "\(found.primaries.map(\.description).joined(separator: ","))"
                            ]
                        )
                    }
                    return taken
                }
                for connection in dropped {
                    // A former primary: what it still answers is read, then it closes.
                    self.eventLoop.scheduleTask(in: .seconds(10)) { connection.channel.close(promise: nil) }
                }
                for (address, promise) in abandoned {
                    // Nothing was sent on it: the callers' commands go by the new map.
                    promise.fail(RedisClientError(.notSent, "\(address) is no longer a primary"))
                }
                promise.succeed(found)
            } else {
                self.state.withLock { $0.refreshing = nil }
                promise.fail(
                    RedisClientError(
                        .connectionClosed,
                        "no cluster node gave its slot map: \(failures.joined(separator: "; "))",
                        underlying: tlsFailure
                    )
                )
            }
        }
        return try await future.get()
    }

    /// `CLUSTER SLOTS` of the node at `address`, on its open connection or a short-lived one
    /// (a seed may be a replica, which must not be prepared like a primary).
    private func askForSlots(_ address: RedisAddress) async throws -> RedisClusterSlotMap {
        if let connection = self.connected(to: address) {
            return try RedisClusterSlotMap(
                slots: try await connection.send("CLUSTER", "SLOTS"),
                askedHost: address.host
            )
        }
        var target = self.configuration.server(address)
        target.connectTimeout = min(target.connectTimeout, .seconds(1))
        let connection = try await RedisConnection.connect(
            configuration: target,
            eventLoop: self.eventLoop,
            logger: self.logger
        )
        defer { Task { await connection.close() } }
        return try RedisClusterSlotMap(slots: try await connection.send("CLUSTER", "SLOTS"), askedHost: address.host)
    }

    /// Behind Sentinel, the master moved to `master` (a ``RedisSentinelWatcher`` heard the
    /// sentinels announce it): lets go of every connection that is not there, so the next
    /// command connects to it. The old master may still be up and take writes that nobody
    /// will read. Commands waiting for a reply on a dropped connection fail as
    /// ``RedisClientError/Code/connectionClosed`` (they may have run); a connect under way
    /// is dropped, and its callers get the next one. Nothing for a cluster.
    public func reconnect(to master: RedisAddress) {
        guard !self.isCluster else { return }
        let (dropped, abandoned) = self.state.withLock { state in
            // Perhaps to the old master, which may never answer: connects under way go too,
            // and their callers connect again.
            let taken = state.takeLinks { _, link in
                guard case .connected(let connection) = link else { return true }
                return !(connection.isActive && connection.isConnected(to: master))
            }
            if state.links.isEmpty { state.announcedMaster = master }
            return taken
        }
        for connection in dropped { connection.channel.close(promise: nil) }
        for (_, promise) in abandoned { promise.fail(Superseded()) }
    }
}
