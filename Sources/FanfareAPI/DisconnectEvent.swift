/// The data of `event: __disconnect`: a service ended this stream
/// (`POST /api/sse/disconnect`). The node closes the stream right after it.
public struct DisconnectEvent: Codable, Sendable, Hashable {
    /// Why, in the service's words (empty when it gave none).
    public var reason: String
    /// Whether the client should come back (resuming from its last id), or stay away.
    public var reconnect: Bool

    public init(reason: String, reconnect: Bool) {
        self.reason = reason
        self.reconnect = reconnect
    }
}
