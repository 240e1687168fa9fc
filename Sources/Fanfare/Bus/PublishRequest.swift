/// What a publish asks for: one channel, an event name and its data (JSON text), and
/// optionally a key that makes a retry of the same publish a no-op.
struct PublishRequest: Sendable, Hashable {
    var channel: String
    var event: String
    var data: String
    /// Within the idempotency window, a second publish with the same key on the same
    /// channel publishes nothing and answers the first one's position.
    var idempotencyKey: String?

    init(channel: String, event: String, data: String, idempotencyKey: String? = nil) {
        self.channel = channel
        self.event = event
        self.data = data
        self.idempotencyKey = idempotencyKey
    }
}
