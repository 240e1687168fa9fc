internal import Logging
internal import NIOCore
internal import ServiceLifecycle

/// The node proves its own delivery path end to end, continuously, as a service: a probe
/// published through the publish function every interval on a channel of the node's own
/// (`__probe.<node id>`; in a Redis Cluster one per primary) must come back through the
/// node's own subscriber. Its ``DeliveryCheckStateMachine`` decides; this performs it.
///
/// When a probe is overdue the node is not ready (`/readyz` 503 with the reason, the
/// `fanfare_delivery_stalled` gauge, a warning, a count). Stalled past the grace, and with
/// another node in the registry that delivers, it hands its streams over: each is closed
/// with a jittered `retry:` and new ones are refused with 503, so that a proxy sends them
/// to a healthy node, where they resume by cursor. It recovers by itself when probes come
/// back. Probe events never reach a stream: the bus hands them here (``received(_:)``),
/// and no client may join a channel whose name starts with `__`.
///
/// Lives on the bus's loop: the timer, the machine and the subscriber's events are there.
final class DeliveryCheck: Service, Sendable {
    /// The probe channels' names start with this.
    static let channelPrefix = "__probe."

    struct Settings: Sendable {
        var interval: TimeAmount
        var timeout: TimeAmount
        var grace: TimeAmount
        var retryJitterMilliseconds: Int
    }

    private let bus: any EventBus
    private let hub: NodeHub
    private let registry: any ClusterRegistry
    private let health: NodeHealth
    private let metrics: NodeMetrics
    private let logger: Logger
    private let nodeID: String
    private let settings: Settings
    private let busStarted: AsyncSignal<Void>
    private let eventLoop: any EventLoop
    /// Runs the check's tasks (a probe's publish, the registry read before a hand-over) on
    /// its loop, the bus's.
    private let executor: EventLoopTaskExecutor
    private let machine: NIOLoopBoundBox<DeliveryCheckStateMachine>
    private let timer: NIOLoopBoundBox<Scheduled<Void>?>

    init(
        bus: any EventBus,
        hub: NodeHub,
        registry: any ClusterRegistry,
        health: NodeHealth,
        metrics: NodeMetrics,
        nodeID: String,
        settings: Settings,
        busStarted: AsyncSignal<Void>,
        eventLoop: any EventLoop,
        logger: Logger
    ) {
        self.bus = bus
        self.hub = hub
        self.registry = registry
        self.health = health
        self.metrics = metrics
        self.nodeID = nodeID
        self.settings = settings
        self.busStarted = busStarted
        self.eventLoop = eventLoop
        self.executor = EventLoopTaskExecutor(eventLoop)
        self.logger = logger
        let milliseconds = { (amount: TimeAmount) in amount.nanoseconds / 1_000_000 }
        self.machine = .makeBoxSendingValue(
            DeliveryCheckStateMachine(
                settings: .init(
                    interval: milliseconds(settings.interval),
                    timeout: milliseconds(settings.timeout),
                    grace: milliseconds(settings.grace)
                )
            ),
            eventLoop: eventLoop
        )
        self.timer = .makeEmptyBox(eventLoop: eventLoop)
    }

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await self.busStarted.wait() }
        } catch {
            // The bus did not start (the node fails with its reason), or shutdown came first.
            if !Task.isShuttingDownGracefully { try? await gracefulShutdown() }
            return
        }
        self.eventLoop.execute { self.start() }
        try? await gracefulShutdown()
        // Draining: the node is not ready anyway, and its streams are being closed.
        self.eventLoop.execute { self.stop() }
    }

    /// A probe event from the bus (on the bus's loop): `true` when it was one, and is
    /// taken here; anything else goes to the hub.
    func received(_ event: BusEvent) -> Bool {
        guard event.channel.utf8.first == UInt8(ascii: "_"), event.channel.hasPrefix(Self.channelPrefix) else {
            return false
        }
        guard let sequence = Self.sequence(in: event.body) else { return true }
        let now = Self.now()
        if self.eventLoop.inEventLoop {
            self.perform(self.machine.value.received(event.channel, sequence: sequence, now: now))
        } else {
            self.eventLoop.execute {
                self.perform(self.machine.value.received(event.channel, sequence: sequence, now: now))
            }
        }
        return true
    }

    // MARK: On the bus's loop

    /// Ticks four times a probe interval: probes go out on time, and an overdue one is
    /// seen within a quarter interval.
    private func start() {
        let channels = self.bus.probeChannels(node: self.nodeID)
        self.perform(self.machine.value.tick(now: Self.now(), channels: channels))
        let tick = TimeAmount.nanoseconds(max(self.settings.interval.nanoseconds / 4, 10_000_000))
        self.timer.value = self.eventLoop.assumeIsolated().scheduleTask(in: tick) { self.start() }
    }

    private func stop() {
        self.timer.value?.cancel()
        self.timer.value = nil
    }

    private func perform(_ actions: [DeliveryCheckStateMachine.Action]) {
        for action in actions {
            switch action {
            case .subscribe(let channel):
                self.bus.subscribe([channel]).hop(to: self.eventLoop).assumeIsolated().whenComplete { result in
                    switch result {
                    case .success: self.machine.value.subscribed(channel)
                    case .failure: self.machine.value.subscribeFailed(channel)
                    }
                }
            case .unsubscribe(let channel):
                self.bus.unsubscribe([channel])
            case .publish(let channel, let sequence):
                let bus = self.bus
                let logger = self.logger
                // From the loop's timer into the bus's async publish: the task is the bridge.
                Task(executorPreference: self.executor) {
                    do {
                        try await bus.publishProbe(channel, sequence: sequence)
                    } catch {
                        logger.debug("fanfare.delivery.probe.failed", metadata: ["error": "\(error)"])
                    }
                }
            case .proven:
                self.health.update(.ok, reason: nil)
                self.logger.info("fanfare.delivery.proven")
            case .stalled(let reason):
                self.health.update(.stalled, reason: reason)
                self.metrics.deliveryStalls.increment()
                self.logger.warning(
                    "fanfare.delivery.stalled",
                    metadata: [
                        "reason": "\(reason)",
                        "effect":
                            "the node is not ready; its streams go to other nodes after \(self.settings.grace.nanoseconds / 1_000_000) ms",
                    ]
                )
            case .recovered(let stalledFor):
                self.health.update(.ok, reason: nil)
                self.logger.notice("fanfare.delivery.recovered", metadata: ["stalled.ms": "\(stalledFor)"])
            case .handOver:
                self.handOver()
            }
        }
    }

    /// Closes the node's streams so that they reconnect elsewhere, if the registry names
    /// another node that delivers: when none does (Redis itself is away, say), moving
    /// every client of the cluster around helps nobody, and the streams stay.
    private func handOver() {
        let registry = self.registry
        let nodeID = self.nodeID
        // From the loop's timer into the registry's async read: the task is the bridge.
        Task(executorPreference: self.executor) {
            let peers: [String]
            do {
                peers = try await registry.snapshot().nodes.filter { $0.id != nodeID && $0.delivering != false }
                    .map(\.id)
            } catch {
                self.logger.warning(
                    "fanfare.delivery.handover.deferred",
                    metadata: ["reason": "the registry cannot be read", "error": "\(error)"]
                )
                return
            }
            self.eventLoop.execute {
                guard case .stalled = self.machine.value.health, !self.machine.value.handedOver else { return }
                guard !peers.isEmpty else {
                    self.logger.warning(
                        "fanfare.delivery.handover.deferred",
                        metadata: ["reason": "no other node delivers; the streams stay here"]
                    )
                    return
                }
                self.machine.value.streamsHandedOver()
                self.health.refuseStreams()
                let streams = self.hub.totals.connections
                self.metrics.streamsHandedOver.increment(by: streams)
                self.logger.warning(
                    "fanfare.delivery.handover",
                    metadata: ["streams": "\(streams)", "nodes": "\(peers.joined(separator: ","))"]
                )
                self.hub.closeAllStreams(.undeliverable, retryJitterMilliseconds: self.settings.retryJitterMilliseconds)
            }
        }
    }

    private static func now() -> Int64 {
        Int64(NIODeadline.now().uptimeNanoseconds / 1_000_000)
    }

    /// The sequence of a probe body, `event: probe\ndata: <sequence>\n\n`.
    static func sequence(in body: ByteBuffer) -> UInt64? {
        let view = body.readableBytesView
        let marker = Array("data: ".utf8)
        guard let range = view.firstRange(of: marker) else { return nil }
        var value: UInt64 = 0
        var digits = 0
        for byte in view[range.upperBound...] {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), digits < 19 else { break }
            value = value * 10 + UInt64(byte - UInt8(ascii: "0"))
            digits += 1
        }
        return digits > 0 ? value : nil
    }
}
