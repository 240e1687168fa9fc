/// The answer of `GET /api/sse/presence/{channel}`: who has a stream on the channel now,
/// across the cluster (with `--presence`).
public struct PresenceAnswer: Codable, Sendable, Hashable {
    /// One user on the channel, with how many streams it has there.
    public struct User: Codable, Sendable, Hashable {
        public var userId: String
        public var streams: Int

        public init(userId: String, streams: Int) {
            self.userId = userId
            self.streams = streams
        }
    }

    public var channel: String
    public var users: [User]

    public init(channel: String, users: [User]) {
        self.channel = channel
        self.users = users
    }
}
