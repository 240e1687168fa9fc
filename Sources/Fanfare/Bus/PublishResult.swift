/// What a publish did.
struct PublishResult: Sendable, Hashable {
    /// The cluster-wide event id (the SSE `id:`).
    var id: String
    /// Whether any node had a subscriber for the channel.
    var sent: Bool
    /// Matching connections cluster-wide, from the registry.
    var connections: Int
}
