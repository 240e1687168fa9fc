internal import HiredisNIO
internal import Logging
internal import ServiceLifecycle

/// The node's bus as a service: connects it (Redis: the command connection, the function
/// library, the subscriber) and closes it once every other service has finished. First in
/// the node's group, so it starts first and stops last.
struct BusService: Service {
    let bus: any EventBus
    let hub: NodeHub
    /// Takes the delivery check's probe events; everything else goes to the hub.
    let deliveryCheck: DeliveryCheck?
    let metrics: NodeMetrics
    let logger: Logger
    /// Set once the bus is connected; the HTTP server waits for it before it listens.
    let started: AsyncSignal<Void>
    /// With `--replica-acks`: checks that the replicas are there while the node runs.
    var replicaCheck: ReplicaCheck? = nil

    func run() async throws {
        let hub = self.hub
        let metrics = self.metrics
        let check = self.deliveryCheck
        do {
            try await self.bus.start(
                deliver: { event in
                    if let check, check.received(event) { return }
                    hub.receive(event)
                },
                subscriptions: { change in
                    switch change {
                    case .ready:
                        hub.subscriberReady()
                    case .reconnected:
                        metrics.redisReconnects.increment()
                        hub.reconnected()
                    case .moved(let channels):
                        metrics.redisReconnects.increment()
                        hub.reconnected(channels)
                    }
                },
                disconnect: { [bus, logger] request in
                    // One stream whose place under its user's limit a newer one took:
                    // ended if it is here, with no answer.
                    if request.lease != nil {
                        hub.endStream(request)
                        return
                    }
                    // From the subscriber's callback into the hub's loops and an answer to
                    // Redis: the task is the bridge (see docs/ARCHITECTURE.md).
                    Task {
                        let closed = await hub.disconnect(request)
                        logger.info(
                            "sse.disconnect",
                            metadata: ["channel": "\(request.channel)", "closed": "\(closed)"]
                        )
                        do {
                            try await bus.answerDisconnect(request, closed: closed)
                        } catch {
                            logger.warning("sse.disconnect.answer_failed", metadata: ["error": "\(error)"])
                        }
                    }
                }
            )
        } catch {
            let failure: FanfareError
            if let error = error as? FanfareError, error.code == .invalidConfiguration {
                // A Redis that cannot work (too old): its own sentence.
                failure = FanfareError(.invalidConfiguration, "the node cannot start: \(error.message)")
            } else if let tls = Self.tlsFailure(error) {
                // A certificate not trusted, a client certificate refused: the sentence says which.
                failure = FanfareError(
                    .unavailable,
                    "the node cannot start: \(tls.message)",
                    underlying: tls.underlying
                )
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
        self.hub.startPendingCheck()
        self.started.succeed(())
        // Until the other services are done (or the group is cancelled), checking the
        // replicas meanwhile.
        await withTaskGroup(of: Void.self) { group in
            if let check = self.replicaCheck { group.addTask { await check.run() } }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        self.hub.stopPendingCheck()
        await self.bus.shutdown()
    }

    /// The TLS failure behind `error`, if it is one (however deeply wrapped).
    private static func tlsFailure(_ error: any Error) -> RedisClientError? {
        var current: (any Error)? = error
        for _ in 0..<8 {
            switch current {
            case let redis as RedisClientError:
                if redis.isTLSFailure { return redis }
                current = redis.underlying
            case let fanfare as FanfareError:
                current = fanfare.underlying
            default:
                return nil
            }
        }
        return nil
    }
}
