/// What a publish asks for: one channel, an event name and its data (JSON text), optionally
/// a key that makes a retry of the same publish a no-op, and whether it ends the channel.
struct PublishRequest: Sendable, Hashable {
    var channel: String
    var event: String
    var data: String
    /// Within the idempotency window, a second publish with the same key on the same
    /// channel publishes nothing and answers the first one's position.
    var idempotencyKey: String?
    /// The event ends its channel (a run): stored and delivered like any other, after which
    /// the channel refuses publishes (``FanfareError/Code/conflict``) while its history lasts.
    var isFinal: Bool

    init(channel: String, event: String, data: String, idempotencyKey: String? = nil, isFinal: Bool = false) {
        self.channel = channel
        self.event = event
        self.data = data
        self.idempotencyKey = idempotencyKey
        self.isFinal = isFinal
    }
}
