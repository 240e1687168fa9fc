internal import NIOCore
internal import ServiceLifecycle
import Synchronization

/// The leases of an embedded node: in memory, since the node is the whole cluster. Places
/// are taken and given back at once under a lock; joins and leaves are published by
/// ``run()``, in the order the streams opened and closed.
final class EmbeddedLeases: ClusterLeases {
    private struct State {
        /// Per user, its streams' leases, oldest first.
        var places: [String: [String]] = [:]
        /// Per channel, streams per user.
        var presence: [String: [String: Int]] = [:]
    }

    private let state = Mutex(State())
    private let changes = LeaseChanges()
    private let bus: any EventBus
    private let hub: NodeHub

    init(bus: any EventBus, hub: NodeHub) {
        self.bus = bus
        self.hub = hub
    }

    func acquire(
        user: String,
        lease: String,
        limit: Int,
        policy: UserLimitPolicy,
        on eventLoop: any EventLoop
    ) async throws -> UserPlaceAnswer {
        let ended = self.state.withLock { state -> [String]? in
            var places = state.places[user] ?? []
            var ended: [String] = []
            if places.count >= limit {
                guard policy == .closeOldest else { return nil }
                ended = Array(places.prefix(places.count - limit + 1))
                places.removeFirst(ended.count)
            }
            places.append(lease)
            state.places[user] = places
            return ended
        }
        guard let ended else { return .refused }
        for old in ended {
            self.hub.endStream(
                .endingPlace(of: user, lease: old, reason: "connection limit per user: a newer stream opened")
            )
        }
        return .granted(place: lease, ended: ended)
    }

    func release(_ leases: StreamLeases) { self.givePlaceBack(leases) }

    func opened(_ leases: StreamLeases) {
        guard !leases.presence.isEmpty else { return }
        self.changes.add(.opened(leases))
    }

    func closed(_ leases: StreamLeases) {
        self.givePlaceBack(leases)
        guard !leases.presence.isEmpty else { return }
        self.changes.add(.closed(leases))
    }

    private func givePlaceBack(_ leases: StreamLeases) {
        guard let place = leases.place else { return }
        self.state.withLock { state in
            state.places[leases.user]?.removeAll { $0 == place }
            if state.places[leases.user]?.isEmpty == true { state.places[leases.user] = nil }
        }
    }

    func users(on channel: String, on eventLoop: any EventLoop) async throws -> [PresenceUser] {
        self.state.withLock { state in
            (state.presence[channel] ?? [:]).map { PresenceUser(user: $0.key, streams: $0.value) }
                .sorted { $0.user < $1.user }
        }
    }

    func run() async {
        for await _ in self.changes.bell.cancelOnGracefulShutdown() {
            await self.apply(self.changes.take())
        }
        await self.apply(self.changes.take())
    }

    /// Counts each change and publishes `join` when a user's count on a channel leaves
    /// zero and `leave` when it comes back to it.
    private func apply(_ changes: [LeaseChanges.Change]) async {
        for change in changes {
            let (leases, step) =
                switch change {
                case .opened(let leases): (leases, 1)
                case .closed(let leases), .released(let leases): (leases, -1)
                }
            let crossed = self.state.withLock { state in
                leases.presence.filter { channel in
                    let count = state.presence[channel, default: [:]][leases.user, default: 0] + step
                    state.presence[channel, default: [:]][leases.user] = count > 0 ? count : nil
                    if state.presence[channel]?.isEmpty == true { state.presence[channel] = nil }
                    return step > 0 ? count == 1 : count == 0
                }
            }
            for channel in crossed {
                _ = try? await self.bus.publish(
                    PresenceEvent(step > 0 ? .join : .leave, user: leases.user, channel: channel).request,
                    on: self.hub.busLoop
                )
            }
        }
    }
}

/// A join or leave of a channel's presence, as it is published on `presence:<channel>`
/// (the Redis functions write the same).
struct PresenceEvent: Sendable, Equatable {
    enum Kind: String, Sendable { case join, leave }

    var kind: Kind
    var user: String
    var channel: String

    init(_ kind: Kind, user: String, channel: String) {
        self.kind = kind
        self.user = user
        self.channel = channel
    }

    /// User ids and channel names need no JSON escapes (their alphabet has none).
    var request: PublishRequest {
        PublishRequest(
            channel: ChannelName.presence(self.channel),
            event: self.kind.rawValue,
            data: #"{"user":"\#(self.user)","channel":"\#(self.channel)"}"#
        )
    }
}
