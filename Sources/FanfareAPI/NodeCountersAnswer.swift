/// The answering node's own counters in ``ClusterMetricsAnswer`` (the same as its
/// Prometheus counters).
public struct NodeCountersAnswer: Codable, Sendable, Hashable {
    public var nodeId: String
    public var eventsPublished: Int
    public var publishFailures: Int
    public var deliveries: Int
    public var eventsReplayed: Int
    public var resetsSent: Int
    public var slowConsumerCloses: Int
    public var redisReconnects: Int

    public init(
        nodeId: String,
        eventsPublished: Int,
        publishFailures: Int,
        deliveries: Int,
        eventsReplayed: Int,
        resetsSent: Int,
        slowConsumerCloses: Int,
        redisReconnects: Int
    ) {
        self.nodeId = nodeId
        self.eventsPublished = eventsPublished
        self.publishFailures = publishFailures
        self.deliveries = deliveries
        self.eventsReplayed = eventsReplayed
        self.resetsSent = resetsSent
        self.slowConsumerCloses = slowConsumerCloses
        self.redisReconnects = redisReconnects
    }
}
