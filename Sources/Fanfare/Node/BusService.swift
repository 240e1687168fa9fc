internal import Logging
internal import ServiceLifecycle

/// The node's bus as a service: connects it (Redis: the command connection, the function
/// library, the subscriber) and closes it once every other service has finished. First in
/// the node's group, so it starts first and stops last.
struct BusService: Service {
    let bus: any EventBus
    let hub: NodeHub
    let metrics: NodeMetrics
    let logger: Logger
    /// Set once the bus is connected; the HTTP server waits for it before it listens.
    let started: AsyncSignal<Void>

    func run() async throws {
        let hub = self.hub
        let metrics = self.metrics
        do {
            try await self.bus.start(
                deliver: { event in hub.receive(event) },
                resubscribed: {
                    metrics.redisReconnects.increment()
                    hub.reconnected()
                }
            )
        } catch {
            let failure: FanfareError
            if let error = error as? FanfareError, error.code == .invalidConfiguration {
                // A Redis that cannot work (too old): its own sentence.
                failure = FanfareError(.invalidConfiguration, "the node cannot start: \(error.message)")
            } else {
                failure = FanfareError(
                    .unavailable,
                    "the node cannot start: connecting to Redis failed",
                    underlying: error
                )
            }
            self.started.fail(failure)
            await self.bus.shutdown()
            throw failure
        }
        self.started.succeed(())
        // Until the other services are done (or the group is cancelled).
        try? await gracefulShutdown()
        await self.bus.shutdown()
    }
}
