/// One live node in ``ClusterMetricsAnswer``.
public struct NodeAnswer: Codable, Sendable, Hashable {
    public var nodeId: String
    /// `host:port` others reach the node at.
    public var address: String
    public var version: String
    /// Milliseconds since 1970 when the node started.
    public var startedAt: Int64
    public var uptimeSeconds: Int64
    public var connections: Int
    public var clients: Int
    /// Milliseconds since 1970 when the node last refreshed its row.
    public var lastSeen: Int64
    /// Whether the node's delivery check passes (absent for nodes that do not say).
    public var delivering: Bool?
    /// Events published through the node, and written to its streams, since it started
    /// (absent for nodes that do not say): rates come from two readings.
    public var published: Int?
    public var delivered: Int?

    public init(
        nodeId: String,
        address: String,
        version: String,
        startedAt: Int64,
        uptimeSeconds: Int64,
        connections: Int,
        clients: Int,
        lastSeen: Int64,
        delivering: Bool? = nil,
        published: Int? = nil,
        delivered: Int? = nil
    ) {
        self.published = published
        self.delivered = delivered
        self.nodeId = nodeId
        self.address = address
        self.version = version
        self.startedAt = startedAt
        self.uptimeSeconds = uptimeSeconds
        self.connections = connections
        self.clients = clients
        self.lastSeen = lastSeen
        self.delivering = delivering
    }
}
