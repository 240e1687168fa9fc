internal import CoreMetrics
internal import Metrics
internal import Prometheus
import Synchronization

/// The node's metrics: recorded through swift-metrics into a registry of its own (so
/// several nodes in one process keep separate figures) and served as Prometheus text.
///
/// Every series carries a `node` label. Counters also keep a readable value for the JSON
/// `thisNode` row of `/api/sse/metrics`.
final class NodeMetrics: Sendable {
    /// A counter that can also be read back.
    final class Tally: Sendable {
        private let value = Atomic<Int>(0)
        private let counter: Metrics.Counter

        fileprivate init(
            _ label: String,
            node: String,
            extra: [(String, String)] = [],
            factory: any MetricsFactory
        ) {
            self.counter = Metrics.Counter(label: label, dimensions: [("node", node)] + extra, factory: factory)
        }

        func increment(by amount: Int = 1) {
            guard amount > 0 else { return }
            self.value.wrappingAdd(amount, ordering: .relaxed)
            self.counter.increment(by: Int64(amount))
        }

        var current: Int { self.value.load(ordering: .relaxed) }
    }

    private static let latencyLabel = "fanfare_delivery_latency_seconds"

    private let registry = PrometheusCollectorRegistry()

    let eventsPublished: Tally
    let publishFailures: Tally
    let deliveries: Tally
    let eventsReplayed: Tally
    let resetsSent: Tally
    let slowConsumerCloses: Tally
    let redisReconnects: Tally
    /// Times the delivery check found the node stalled, and streams it handed over.
    let deliveryStalls: Tally
    let streamsHandedOver: Tally
    /// Requests refused by a limit or a credential check, by reason.
    private let refusals: [Refusal: Tally]

    enum Refusal: String, CaseIterable, Sendable {
        case unauthorized
        case forbidden
        case connectionsPerClient = "connections_per_client"
        case connectionsPerUser = "connections_per_user"
        case connectionsPerIP = "connections_per_ip"
        case connectionsPerNode = "connections_per_node"
        case publishRate = "publish_rate"
        case channelsPerStream = "channels_per_stream"
        case headerSize = "header_size"
        case uriSize = "uri_size"
        case bodySize = "body_size"
        case headerTimeout = "header_timeout"
        case bodyTimeout = "body_timeout"
    }

    private let connections: Metrics.Gauge
    private let clients: Metrics.Gauge
    private let channels: Metrics.Gauge
    private let ready: Metrics.Gauge
    /// 1 while the delivery check finds the node stalled.
    private let deliveryStalled: Metrics.Gauge
    /// From publish (the time in the event id) to the write on a loop, once per event
    /// and loop.
    private let latency: Metrics.Timer

    init(nodeID: String) {
        var factory = PrometheusMetricsFactory(registry: self.registry)
        factory.durationHistogramBuckets[Self.latencyLabel] = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
            .milliseconds(2500), .seconds(5), .seconds(10),
        ]
        let node = [("node", nodeID)]
        self.eventsPublished = Tally("fanfare_events_published_total", node: nodeID, factory: factory)
        self.publishFailures = Tally("fanfare_publish_failures_total", node: nodeID, factory: factory)
        self.deliveries = Tally("fanfare_deliveries_total", node: nodeID, factory: factory)
        self.eventsReplayed = Tally("fanfare_events_replayed_total", node: nodeID, factory: factory)
        self.resetsSent = Tally("fanfare_resets_sent_total", node: nodeID, factory: factory)
        self.slowConsumerCloses = Tally("fanfare_slow_consumer_closes_total", node: nodeID, factory: factory)
        self.redisReconnects = Tally("fanfare_redis_reconnects_total", node: nodeID, factory: factory)
        self.deliveryStalls = Tally("fanfare_delivery_stalls_total", node: nodeID, factory: factory)
        self.streamsHandedOver = Tally("fanfare_streams_handed_over_total", node: nodeID, factory: factory)
        var refusals: [Refusal: Tally] = [:]
        for reason in Refusal.allCases {
            refusals[reason] = Tally(
                "fanfare_refusals_total",
                node: nodeID,
                extra: [("reason", reason.rawValue)],
                factory: factory
            )
        }
        self.refusals = refusals
        self.connections = Metrics.Gauge(label: "fanfare_connections", dimensions: node, factory: factory)
        self.clients = Metrics.Gauge(label: "fanfare_clients", dimensions: node, factory: factory)
        self.channels = Metrics.Gauge(label: "fanfare_channels", dimensions: node, factory: factory)
        self.ready = Metrics.Gauge(label: "fanfare_ready", dimensions: node, factory: factory)
        self.deliveryStalled = Metrics.Gauge(label: "fanfare_delivery_stalled", dimensions: node, factory: factory)
        self.latency = Metrics.Timer(label: Self.latencyLabel, dimensions: node, factory: factory)
    }

    func refused(_ reason: Refusal) {
        self.refusals[reason]?.increment()
    }

    /// Counts an error answer that is a credential refusal (401 or 403).
    func countRefusal(_ error: FanfareError) {
        if error.code == .unauthenticated { self.refused(.unauthorized) }
        if error.code == .forbidden { self.refused(.forbidden) }
    }

    /// How many requests were refused for `reason`.
    func refusalCount(_ reason: Refusal) -> Int {
        self.refusals[reason]?.current ?? 0
    }

    /// Records the time from an event's publish (wall-clock milliseconds) to now.
    func recordLatency(publishedAtMilliseconds published: UInt64, now: UInt64) {
        let elapsed = now > published ? now - published : 0
        self.latency.recordNanoseconds(Int64(clamping: elapsed &* 1_000_000))
    }

    /// The Prometheus text, with the gauges set from the node's current state, and the
    /// process's `process_*` figures.
    func render(connections: Int, clients: Int, channels: Int, ready: Bool, deliveryStalled: Bool) -> [UInt8] {
        self.connections.record(connections)
        self.clients.record(clients)
        self.channels.record(channels)
        self.ready.record(ready ? 1 : 0)
        self.deliveryStalled.record(deliveryStalled ? 1 : 0)
        var text = self.registry.emitToBuffer()
        // The process's own figures, under the names dashboards expect.
        if let process = ProcessMetrics.current() { text.append(contentsOf: process.text.utf8) }
        return text
    }
}
