/// The data of `event: __connected`, the first event of every stream: from then on the
/// node delivers everything published to the stream's channels.
public struct ConnectedEvent: Codable, Sendable, Hashable {
    public var clientId: String
    /// The node serving the stream.
    public var nodeId: String
    /// Every channel of the stream: `client:<id>`, `user:<id>`, topics, `broadcast`.
    public var channels: [String]
    /// Milliseconds since 1970 on the node.
    public var time: Int64

    public init(clientId: String, nodeId: String, channels: [String], time: Int64) {
        self.clientId = clientId
        self.nodeId = nodeId
        self.channels = channels
        self.time = time
    }
}
