internal import NIOCore

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
