/// The answer to one publish (`POST /api/sse/notify`).
public struct NotifyAnswer: Codable, Sendable, Hashable {
    /// Always `true`: a publish that fails gets an ``ErrorAnswer``.
    public var ok: Bool
    /// The event's position in its channel's history (`<milliseconds>-<sequence>`).
    /// Each stream's SSE `id:` is its own cursor, which holds this position for the channel.
    public var id: String
    /// Whether any node had a subscriber for the channel.
    public var sent: Bool
    /// Matching connections cluster-wide, from the registry (up to a second old).
    public var connections: Int
    /// The client id, when the target was a client.
    public var clientId: String?
    /// `true` when the publish repeated an idempotency key seen within the window: nothing
    /// was published again, and `id` is the first publish's. Absent otherwise.
    public var duplicate: Bool?

    public init(id: String, sent: Bool, connections: Int, clientId: String? = nil, duplicate: Bool? = nil) {
        self.ok = true
        self.id = id
        self.sent = sent
        self.connections = connections
        self.clientId = clientId
        self.duplicate = duplicate
    }
}
