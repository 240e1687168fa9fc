internal import NIOCore

/// Carries events between nodes and keeps each channel's history. Two implementations:
/// Redis for a cluster, in-memory for an embedded node, with the same semantics: every
/// event gets a position in its channel, readers see the position of the event before it,
/// and the history is bounded per channel.
protocol EventBus: Sendable {
    /// Starts the bus. `deliver` gets every event published to a channel this node
    /// subscribed to, in order per channel, on any thread; `resubscribed` after a lost
    /// subscription came back (events may have been missed meanwhile).
    func start(
        deliver: @escaping @Sendable (BusEvent) -> Void,
        resubscribed: @escaping @Sendable () -> Void
    ) async throws

    /// Subscribes the node to `channels`; the future succeeds once events flow.
    func subscribe(_ channels: [String]) -> EventLoopFuture<Void>
    /// Unsubscribes the node from `channels`.
    func unsubscribe(_ channels: [String])
    /// Publishes one event; fails (never drops silently) when it cannot be stored, and
    /// says whether it may have happened anyway.
    func publish(_ request: PublishRequest) async throws -> PublishResult
    /// Publishes events in order, each on its own (a batch is not one transaction): one
    /// result per request, each as ``publish(_:)`` would have answered it.
    func publish(batch requests: [PublishRequest]) async -> [Result<PublishResult, FanfareError>]
    /// The newest position of each of `channels`, in order (``StreamPosition/zero`` for
    /// one without history).
    func heads(of channels: [String]) async throws -> [StreamPosition]
    /// Up to `limit` events of `channel` after `position`, or why there are none.
    func read(_ channel: String, after position: StreamPosition, limit: Int) async throws -> HistoryPage
    /// Whether publishes can currently succeed.
    var isReady: Bool { get }
    func shutdown() async
}

extension EventBus {
    /// One publish after the other.
    func publish(batch requests: [PublishRequest]) async -> [Result<PublishResult, FanfareError>] {
        var results: [Result<PublishResult, FanfareError>] = []
        results.reserveCapacity(requests.count)
        for request in requests {
            do {
                results.append(.success(try await self.publish(request)))
            } catch let error as FanfareError {
                results.append(.failure(error))
            } catch {
                results.append(.failure(FanfareError(.internalError, "the publish failed", underlying: error)))
            }
        }
        return results
    }
}
