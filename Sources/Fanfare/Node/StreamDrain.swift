internal import Logging
internal import ServiceLifecycle

/// The drain as a service: last in the node's group, so on SIGTERM it goes first. It
/// marks the node draining (`/readyz` false, new streams 503), stops the heartbeats, tells
/// every stream when to come back (a `retry:` with jitter) and closes it, and returns once
/// the streams are gone or half the drain budget passed.
struct StreamDrain: Service {
    let node: NodeContext
    let budget: ShutdownBudget

    func run() async throws {
        do {
            try await gracefulShutdown()
        } catch {
            return  // cancelled: the group is going down without a drain
        }
        self.budget.start()
        let hub = self.node.hub
        self.node.startDraining()
        self.node.logger.notice(
            "fanfare.draining",
            metadata: ["node.id": "\(self.node.identity.id)", "streams": "\(hub.totals.connections)"]
        )
        hub.stopHeartbeats()
        hub.closeAllStreams(retryJitterMilliseconds: self.node.configuration.drainRetryJitterMilliseconds)
        let limit = self.budget.total / 2
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await hub.waitUntilEmpty() }
            group.addTask { try? await Task.sleep(for: limit) }
            await group.next()
            group.cancelAll()
        }
    }
}
