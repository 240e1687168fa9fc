/// What a publish did.
struct PublishResult: Sendable, Hashable {
    /// The event's position in its channel's history.
    var position: StreamPosition
    /// Whether any node had a subscriber for the channel.
    var sent: Bool
    /// The publish repeated an idempotency key seen within the window: nothing was
    /// published, and `position` is the first publish's.
    var duplicate: Bool
}
