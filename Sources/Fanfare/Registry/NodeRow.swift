/// One node's row in the registry, as nodes store it (JSON in Redis) and read it back.
struct NodeRow: Codable, Sendable, Hashable {
    var id: String
    var address: String
    var version: String
    /// Milliseconds since 1970 when the node started.
    var startedAt: Int64
    var connections: Int
    var clients: Int
    /// Milliseconds since 1970 when the row was last refreshed.
    var lastSeen: Int64
    /// Whether the node's delivery check passes (absent from older nodes' rows).
    var delivering: Bool?
    /// Events the node has published and written to streams since it started (absent from
    /// older nodes' rows): the admin page charts their rates.
    var published: Int?
    var delivered: Int?
}
