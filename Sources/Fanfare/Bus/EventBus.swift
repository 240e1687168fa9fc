internal import NIOCore

/// What happened to the node's subscriptions.
enum SubscriptionChange: Sendable, Equatable {
    /// The subscriber is ready for the first time: every subscription asked for so far is
    /// confirmed, including those whose confirmation failed while it was connecting.
    case ready
    /// The subscriber lost its connection and is back: every channel may have missed events.
    case reconnected
    /// These channels were subscribed again on another server (a moved slot, a shard's
    /// subscriber that reconnected): only they may have missed events.
    case moved([String])
}

/// Carries events between nodes and keeps each channel's history. Two implementations:
/// Redis for a cluster, in-memory for an embedded node, with the same semantics: every
/// event gets a position in its channel, readers see the position of the event before it,
/// and the history is bounded per channel.
protocol EventBus: Sendable {
    /// Starts the bus. `deliver` gets every event published to a channel this node
    /// subscribed to, in order per channel, on any thread; `subscriptions` hears when the
    /// subscriber became ready, and when subscriptions came back after events may have
    /// been missed; `disconnect` gets every disconnect request for a channel this node
    /// subscribed to (``sendDisconnect(_:on:)``).
    func start(
        deliver: @escaping @Sendable (BusEvent) -> Void,
        subscriptions: @escaping @Sendable (SubscriptionChange) -> Void,
        disconnect: @escaping @Sendable (DisconnectRequest) -> Void
    ) async throws

    /// Sends `request` to every node subscribed to its channel, this one included (each
    /// gets it through its `disconnect` callback); answers how many nodes it reached.
    func sendDisconnect(_ request: DisconnectRequest, on eventLoop: any EventLoop) async throws -> Int
    /// This node's answer to `request`: it closed `closed` streams.
    func answerDisconnect(_ request: DisconnectRequest, closed: Int) async throws
    /// The answers to `request` so far, one per node that answered.
    func disconnectAnswers(_ request: DisconnectRequest, on eventLoop: any EventLoop) async throws -> [Int]

    /// Subscribes the node to `channels`; the future succeeds once events flow.
    func subscribe(_ channels: [String]) -> EventLoopFuture<Void>
    /// Unsubscribes the node from `channels`.
    func unsubscribe(_ channels: [String])
    // Every call names the caller's event loop: a Redis bus sends on that loop's own
    // connections, so the reply is read where the caller waits for it.

    /// Publishes one event; fails (never drops silently) when it cannot be stored, and
    /// says whether it may have happened anyway.
    func publish(_ request: PublishRequest, on eventLoop: any EventLoop) async throws -> PublishResult
    /// Publishes events in order, each on its own (a batch is not one transaction): one
    /// result per request, each as ``publish(_:)`` would have answered it.
    func publish(
        batch requests: [PublishRequest],
        on eventLoop: any EventLoop
    ) async -> [Result<PublishResult, FanfareError>]
    /// The newest position of each of `channels`, in order (``StreamPosition/zero`` for
    /// one without history).
    func heads(of channels: [String], on eventLoop: any EventLoop) async throws -> [StreamPosition]
    /// Up to `limit` events of `channel` after `position`, or why there are none. The page
    /// stops before an event that would take its bodies past `maxBytes` (its first event
    /// always comes), so a page of large events stays small.
    func read(
        _ channel: String,
        after position: StreamPosition,
        limit: Int,
        maxBytes: Int,
        on eventLoop: any EventLoop
    ) async throws -> HistoryPage
    /// Whether publishes can currently succeed.
    var isReady: Bool { get }
    /// The channels node `node`'s delivery check probes now: one per server the node's
    /// subscriber listens on (none when there is nothing to check, as in process).
    func probeChannels(node: String) -> [String]
    /// Publishes probe `sequence` on `channel` through the publish function, as any
    /// publish goes, without waiting for replicas.
    func publishProbe(_ channel: String, sequence: UInt64) async throws
    /// How many replicas each primary the node reaches has (empty when there is none to
    /// ask, as in process).
    func replicaCounts() async throws -> [Int]
    func shutdown() async
}

extension EventBus {
    func replicaCounts() async throws -> [Int] { [] }

    /// One publish after the other.
    func publish(
        batch requests: [PublishRequest],
        on eventLoop: any EventLoop
    ) async -> [Result<PublishResult, FanfareError>] {
        var results: [Result<PublishResult, FanfareError>] = []
        results.reserveCapacity(requests.count)
        for request in requests {
            do {
                results.append(.success(try await self.publish(request, on: eventLoop)))
            } catch let error as FanfareError {
                results.append(.failure(error))
            } catch {
                results.append(.failure(FanfareError(.internalError, "the publish failed", underlying: error)))
            }
        }
        return results
    }
}
