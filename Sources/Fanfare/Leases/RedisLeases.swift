internal import HiredisNIO
internal import Logging
internal import NIOCore
internal import ServiceLifecycle

/// The cluster's leases in Redis (the keys are in the README's "Redis keys" table).
///
/// A user's places are a sorted set `<prefix>:u:{user:<id>}` whose members name each
/// stream's lease and when it opened, scored by when the lease lapses; `user_acquire`
/// counts the live ones and takes a place in one step, so simultaneous opens on many nodes
/// get exactly the limit. A channel's presence is a sorted set of `<user> <lease>` and a
/// hash of streams per user; its functions publish `join` and `leave` on
/// `presence:<channel>` as the counts cross zero. Every node renews its leases every
/// ``renewInterval``; a node that dies stops, its places lapse after ``lifetime``, and
/// whichever node sweeps next makes its users leave.
final class RedisLeases: ClusterLeases {
    /// Long enough to miss three renewals (a node held up on a loaded machine), short
    /// enough that a dead node's places come back within ten seconds.
    static let lifetime = Duration.seconds(8)
    static let renewInterval = Duration.seconds(2)

    private let bus: RedisEventBus
    private let names: RedisNames
    private let hub: NodeHub
    private let nodeID: String
    private let logger: Logger
    /// `--max-connections-per-user`: a place that lapsed is taken again while there is room.
    private let limit: Int
    private let changes = LeaseChanges()

    init(bus: RedisEventBus, names: RedisNames, hub: NodeHub, nodeID: String, limit: Int, logger: Logger) {
        self.limit = limit
        self.bus = bus
        self.names = names
        self.hub = hub
        self.nodeID = nodeID
        self.logger = logger
    }

    private static var lifetimeMilliseconds: Int64 { Self.lifetime.components.seconds * 1_000 }

    func acquire(
        user: String,
        lease: String,
        limit: Int,
        policy: UserLimitPolicy,
        on eventLoop: any EventLoop
    ) async throws -> UserPlaceAnswer {
        let key = self.names.userPlaces(user)
        let reply: RESPValue
        do {
            reply = try await self.bus.fcall(
                "user_acquire",
                keys: [RESPArgument(key)],
                slot: RedisClusterSlot.of(key),
                arguments: [
                    RESPArgument(limit), RESPArgument(policy == .refuse ? "refuse" : "oldest"), RESPArgument(lease),
                    RESPArgument(Self.lifetimeMilliseconds),
                ],
                on: eventLoop
            )
        } catch {
            throw FanfareError(
                .unavailable,
                "Redis is unavailable; the user's connection limit cannot be checked",
                underlying: error
            )
        }
        let parts = reply.array ?? []
        guard parts.first?.int == 1 else { return .refused }
        guard parts.count >= 2, let place = parts[1].string else {
            throw FanfareError(.internalError, "unexpected reply from \(self.names.function("user_acquire"))")
        }
        return .granted(place: place, ended: parts.dropFirst(2).compactMap(\.string))
    }

    func release(_ leases: StreamLeases) { self.changes.add(.released(leases)) }
    func opened(_ leases: StreamLeases) { self.changes.add(.opened(leases)) }
    func closed(_ leases: StreamLeases) { self.changes.add(.closed(leases)) }

    func users(on channel: String, on eventLoop: any EventLoop) async throws -> [PresenceUser] {
        let keys = self.names.presence(channel)
        let reply: RESPValue
        do {
            reply = try await self.bus.fcall(
                "presence_users",
                keys: keys.map { RESPArgument($0) },
                slot: RedisClusterSlot.of(keys[0]),
                on: eventLoop
            )
        } catch {
            throw FanfareError(.unavailable, "Redis is unavailable; presence cannot be read", underlying: error)
        }
        let items = reply.array ?? []
        return stride(from: 0, to: items.count - 1, by: 2).compactMap { index in
            guard let user = items[index].string, let streams = items[index + 1].int else { return nil }
            return PresenceUser(user: user, streams: Int(streams))
        }
    }

    func run() async {
        var book = LeaseBook()
        var nextRenewal = ContinuousClock.now
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [changes] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: Self.renewInterval)
                    changes.wake()
                }
            }
            for await _ in self.changes.bell.cancelOnGracefulShutdown() {
                await self.apply(self.changes.take(), to: &book)
                if ContinuousClock.now >= nextRenewal {
                    nextRenewal = ContinuousClock.now + Self.renewInterval
                    await self.renew(&book)
                }
            }
            // Shutting down: what closed meanwhile is given back now, not left to lapse.
            await self.apply(self.changes.take(), to: &book)
            group.cancelAll()
        }
    }

    /// Applies `changes` in order: places go back, and per channel the leases that opened
    /// enter before those that closed leave (a lease does each at most once).
    private func apply(_ changes: [LeaseChanges.Change], to book: inout LeaseBook) async {
        let actions = book.apply(changes)
        guard !actions.isEmpty else { return }
        await withTaskGroup(of: Void.self) { group in
            for release in actions.releases {
                let key = self.names.userPlaces(release.user)
                group.addTask { _ = await self.call("user_release", [key], [RESPArgument(release.place)]) }
            }
            for channel in Set(actions.enters.keys).union(actions.leaves.keys) {
                let keys = self.names.presence(channel)
                let entering = (actions.enters[channel] ?? []).flatMap { [$0.user, $0.lease] }
                let leaving = (actions.leaves[channel] ?? []).flatMap { [$0.user, $0.lease] }
                group.addTask {
                    if !entering.isEmpty {
                        let arguments = [RESPArgument(Self.lifetimeMilliseconds)] + entering.map { RESPArgument($0) }
                        _ = await self.call("presence_renew", keys, arguments)
                    }
                    if !leaving.isEmpty {
                        _ = await self.call("presence_leave", keys, leaving.map { RESPArgument($0) })
                    }
                }
            }
        }
    }

    /// Renews every place and presence lease of the node, ends the streams whose place is
    /// gone, notes the node's presence channels, and sweeps them all when it is this node's
    /// turn.
    private func renew(_ book: inout LeaseBook) async {
        let limit = max(1, self.limit)
        let gone = await withTaskGroup(of: [(user: String, place: String)].self) { group in
            for (user, places) in book.places {
                let key = self.names.userPlaces(user)
                group.addTask {
                    let arguments =
                        [RESPArgument(Self.lifetimeMilliseconds), RESPArgument(limit)] + places.map { RESPArgument($0) }
                    let reply = await self.call("user_renew", [key], arguments)
                    return (reply?.array ?? []).compactMap { $0.string.map { (user, $0) } }
                }
            }
            for (channel, leases) in book.presence {
                let keys = self.names.presence(channel)
                group.addTask {
                    var arguments = [RESPArgument(Self.lifetimeMilliseconds)]
                    for (lease, user) in leases { arguments += [RESPArgument(user), RESPArgument(lease)] }
                    _ = await self.call("presence_renew", keys, arguments)
                    return []
                }
            }
            return await group.reduce(into: []) { $0 += $1 }
        }
        for (user, place) in gone {
            // Taken by a newer stream whose disconnect did not reach it, or lapsed while Redis
            // was away and taken since: the stream no longer counts, so it ends.
            book.forget(LeaseBook.Place(user: user, place: place))
            guard let lease = LeaseBook.lease(of: place) else { continue }
            self.hub.endStream(
                .endingPlace(
                    of: user,
                    lease: lease,
                    reason: "connection limit per user: this stream's place was taken or lapsed"
                )
            )
        }
        let interval = Self.renewInterval.components.seconds * 1_000
        let index = [self.names.presenceIndex, self.names.presenceSweepLock]
        let due = await self.call(
            "presence_index",
            index,
            [RESPArgument(self.nodeID), RESPArgument(interval)] + book.presence.keys.map { RESPArgument($0) }
        )
        let channels = (due?.array ?? []).compactMap(\.string)
        guard !channels.isEmpty else { return }
        let empty = await withTaskGroup(of: String?.self) { group in
            for channel in channels {
                let keys = self.names.presence(channel)
                group.addTask {
                    let left = await self.call("presence_sweep", keys, [])
                    return left?.int == 0 ? channel : nil
                }
            }
            return await group.reduce(into: [String]()) { if let channel = $1 { $0.append(channel) } }
        }
        if !empty.isEmpty {
            _ = await self.call("presence_unindex", [self.names.presenceIndex], empty.map { RESPArgument($0) })
        }
    }

    /// One call on the bus loop's connection; a failure is logged (the next renewal
    /// repairs what it missed) and answers `nil`.
    private func call(_ function: String, _ keys: [String], _ arguments: [RESPArgument]) async -> RESPValue? {
        do {
            return try await self.bus.fcall(
                function,
                keys: keys.map { RESPArgument($0) },
                slot: RedisClusterSlot.of(keys[0]),
                arguments: arguments,
                on: self.bus.busLoop
            )
        } catch {
            if !(error is CancellationError) {
                self.logger.warning("leases.call.failed", metadata: ["function": "\(function)", "error": "\(error)"])
            }
            return nil
        }
    }
}
