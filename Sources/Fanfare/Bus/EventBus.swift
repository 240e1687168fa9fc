internal import NIOCore

/// What a publish asks for: one channel, an event name and its data (JSON text).
public struct PublishRequest: Sendable, Hashable {
    public var channel: String
    public var event: String
    public var data: String

    public init(channel: String, event: String, data: String) {
        self.channel = channel
        self.event = event
        self.data = data
    }
}

/// What a publish did.
public struct PublishResult: Sendable, Hashable {
    /// The cluster-wide event id (the SSE `id:`).
    public var id: String
    /// Whether any node had a subscriber for the channel.
    public var sent: Bool
    /// Matching connections cluster-wide, from the registry.
    public var connections: Int
}

/// Carries events between nodes and assigns their ids. Two implementations: Redis for
/// a cluster, in-memory for an embedded node; both hand each event to `deliver` as the
/// complete SSE frame (`id:`, `event:`, `data:` lines), encoded once.
protocol EventBus: Sendable {
    /// Starts the bus. `deliver(channel, frame)` is called for every event published to a
    /// channel this node subscribed to, on any thread; `resubscribed` after a lost
    /// subscription came back (events may have been missed meanwhile).
    func start(
        deliver: @escaping @Sendable (_ channel: String, _ frame: ByteBuffer) -> Void,
        resubscribed: @escaping @Sendable () -> Void
    ) async throws

    /// Subscribes the node to `channels`; the future succeeds once events flow.
    func subscribe(_ channels: [String]) -> EventLoopFuture<Void>
    /// Unsubscribes the node from `channels`.
    func unsubscribe(_ channels: [String])
    /// Publishes one event; fails (never drops silently) when it cannot be stored.
    func publish(_ request: PublishRequest) async throws -> PublishResult
    /// Every retained event after `id` on `channels`, or a gap when `id` is older than the
    /// retained history or was never issued.
    func replay(after id: EventID, channels: Set<String>) async throws -> Replay
    /// Whether publishes can currently succeed.
    var isReady: Bool { get }
    func shutdown() async
}
