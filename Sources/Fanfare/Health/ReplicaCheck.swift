internal import Logging

/// With `--replica-acks` above 0: asks Redis how many replicas each primary has, at start
/// and every ten seconds, so that `/readyz` (and the log, once per change) says what a
/// shortage means for the node's publishes: they are stored on the master but not
/// confirmed, and each answers 503 after the ack timeout.
struct ReplicaCheck: Sendable {
    let bus: any EventBus
    let health: NodeHealth
    let timeoutMilliseconds: Int
    let logger: Logger
    var interval: Duration = .seconds(10)

    /// Checks until the task is cancelled.
    func run() async {
        while !Task.isCancelled {
            await self.check()
            try? await Task.sleep(for: self.interval)
        }
    }

    func check() async {
        let counts: [Int]
        do {
            counts = try await self.bus.replicaCounts()
        } catch {
            self.logger.debug("redis.replicas.unknown", metadata: ["error": "\(error)"])
            self.health.forgetReplicas()
            return
        }
        guard let fewest = counts.min() else {
            self.health.forgetReplicas()
            return
        }
        let wanted = self.health.replicasWanted
        guard self.health.updateReplicas(found: fewest) else { return }
        let effect = Self.effect(wanted: wanted, found: fewest, timeoutMilliseconds: self.timeoutMilliseconds)
        if fewest < wanted {
            self.logger.warning(
                "redis.replicas.missing",
                metadata: ["wanted": "\(wanted)", "found": "\(fewest)", "effect": "\(effect)"]
            )
        } else {
            self.logger.info("redis.replicas.ok", metadata: ["wanted": "\(wanted)", "found": "\(fewest)"])
        }
    }

    /// What `found` replicas (the fewest of any primary) mean for publishes that wait for
    /// `wanted`.
    static func effect(wanted: Int, found: Int?, timeoutMilliseconds: Int) -> String {
        guard let found else { return "the replicas are not checked yet" }
        let replicas = wanted == 1 ? "1 replica" : "\(wanted) replicas"
        if found >= wanted {
            return
                "every publish is acknowledged once \(replicas) \(wanted == 1 ? "has" : "have") it, so a failover keeps it"
        }
        return "a primary has \(found) of the \(replicas) a publish waits for: publishes are stored but not confirmed, "
            + "each answering 503 after \(timeoutMilliseconds) ms; add replicas, or set --replica-acks 0 to accept "
            + "losing acknowledged publishes in a failover"
    }
}
