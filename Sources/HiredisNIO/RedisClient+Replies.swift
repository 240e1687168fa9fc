internal import NIOCore
import Synchronization

/// Pipelined commands across a cluster's primaries: each round sends what is still to be
/// sent, grouped by primary, and collects the replies; redirections make the next round.
extension RedisClient {
    /// Sends every command, pipelined per primary, and returns each raw reply in order.
    /// With a `trailer` (such as `WAIT`), every connection that carried commands carries the
    /// trailer right after them, and each command's reply holds the trailer's reply from
    /// the connection it ran on.
    public func replies(
        to commands: [Command],
        trailer: (command: String, arguments: [RESPArgument])? = nil
    ) async
        -> [Reply]
    {
        var rounds = ReplyRounds(commands: commands)
        var hop = 0
        while rounds.hasPending {
            hop += 1
            let map: RedisClusterSlotMap
            do {
                map = try await self.slotMap()
            } catch {
                rounds.failPending(Self.notSent(error))
                break
            }
            var sent: [SentGroup] = []
            for (address, group) in rounds.route(with: map) {
                if let group = await self.send(group, to: address, trailer: trailer, hop: hop, rounds: &rounds) {
                    sent.append(group)
                }
            }
            let (moved, tryAgain) = await self.collect(sent, hop: hop, rounds: &rounds)
            if moved { self.refreshInBackground() }
            if rounds.hasPending && (sent.isEmpty || tryAgain) {
                // Nothing could be sent at all, or a slot is being migrated: give the cluster
                // a moment to settle.
                try? await Task.sleep(for: .milliseconds(50 * hop))
            }
        }
        return rounds.replies
    }

    /// One primary's commands on their way: the replies' futures, and the trailer's.
    struct SentGroup {
        var group: [ReplyRounds.Item]
        var replies: [EventLoopFuture<RESPValue>]
        var trailer: EventLoopFuture<RESPValue>?
    }

    /// Writes `group` on the connection to `address`, or settles it when nothing can go out
    /// (then `nil`).
    private func send(
        _ group: [ReplyRounds.Item],
        to address: RedisAddress,
        trailer: (command: String, arguments: [RESPArgument])?,
        hop: Int,
        rounds: inout ReplyRounds
    ) async -> SentGroup? {
        let connection: RedisConnection
        do {
            connection = try await self.connection(to: address)
        } catch {
            // Nothing went out: in a cluster the next map may name another primary (a lone
            // server's connection already tried, and failed, once).
            if hop < Self.maximumHops && self.isCluster {
                rounds.retry(group)
            } else {
                rounds.fail(group, Self.notSent(error))
            }
            return nil
        }
        let commands = rounds.commands
        let write = { @Sendable () -> ([EventLoopFuture<RESPValue>], EventLoopFuture<RESPValue>?) in
            var futures: [EventLoopFuture<RESPValue>] = []
            for item in group {
                if item.asking { _ = connection.sendFuture("ASKING", arguments: []) }
                let command = commands[item.index]
                futures.append(connection.sendFuture(command.command, arguments: command.arguments))
            }
            return (futures, trailer.map { connection.sendFuture($0.command, arguments: $0.arguments) })
        }
        // ASKING holds for the next command of the connection only: written in one turn of
        // its loop, no other caller's command comes in between.
        let (futures, trailerFuture) =
            group.contains(where: \.asking) && !connection.eventLoop.inEventLoop
            ? ((try? await connection.eventLoop.submit(write).get()) ?? ([], nil)) : write()
        guard futures.count == group.count else {
            rounds.fail(group, RedisClientError(.notSent, "the connection's event loop is shutting down"))
            return nil
        }
        return SentGroup(group: group, replies: futures, trailer: trailerFuture)
    }

    /// Takes the replies of a round: each is the command's, unless it redirects the command
    /// to the next round. Returns whether a slot moved, and whether one is being migrated.
    private func collect(
        _ sent: [SentGroup],
        hop: Int,
        rounds: inout ReplyRounds
    ) async -> (moved: Bool, tryAgain: Bool) {
        var moved = false
        var tryAgain = false
        for group in sent {
            var trailerResult: Result<RESPValue, any Error>?
            if let trailer = group.trailer {
                trailerResult = await Self.result(of: trailer)
            }
            for (item, future) in zip(group.group, group.replies) {
                let result = await Self.result(of: future)
                if case .success(let reply) = result, hop < Self.maximumHops,
                    let redirection = self.redirection(in: reply)
                {
                    switch redirection {
                    case .moved(let to):
                        moved = true
                        rounds.redirect(item, to: to, asking: false)
                    case .ask(let to):
                        rounds.redirect(item, to: to, asking: true)
                    case .tryAgain:
                        tryAgain = true
                        rounds.retry([item])
                    }
                    continue
                }
                rounds.settle(item, Reply(result: result, trailer: trailerResult))
            }
        }
        return (moved, tryAgain)
    }

    static func notSent(_ error: any Error) -> RedisClientError {
        if let error = error as? RedisClientError, error.code == .notSent { return error }
        return RedisClientError(.notSent, "the command was not sent", underlying: error)
    }

    private static func result(of future: EventLoopFuture<RESPValue>) async -> Result<RESPValue, any Error> {
        do {
            return .success(try await future.valueUnlessCancelled())
        } catch {
            return .failure(error)
        }
    }

    enum Redirection {
        case moved(RedisAddress)
        case ask(RedisAddress)
        case tryAgain
    }

    /// A reply that asks for the command to go elsewhere or again. A `MOVED` moves its slot
    /// in the map at once.
    func redirection(in reply: RESPValue) -> Redirection? {
        guard case .error(let message) = reply, self.isCluster else { return nil }
        if message.hasPrefix("TRYAGAIN") { return .tryAgain }
        guard let redirection = RedisRedirection(error: message) else { return nil }
        let address = RedisAddress(host: redirection.host, port: redirection.port)
        switch redirection.kind {
        case .moved:
            self.state.withLock { $0.map?.move(slot: redirection.slot, to: address) }
            return .moved(address)
        case .ask:
            return .ask(address)
        }
    }
}

/// The commands of one ``RedisClient/replies(to:trailer:)`` call: which have their reply,
/// and which go (again) in the next round, where.
struct ReplyRounds {
    /// A command still to send: its index, the node a redirection named, and whether that
    /// was an ASK (send ASKING first).
    struct Item {
        var index: Int
        var to: RedisAddress?
        var asking: Bool
    }

    let commands: [RedisClient.Command]
    private var results: [RedisClient.Reply?]
    private var pending: [Item]

    init(commands: [RedisClient.Command]) {
        self.commands = commands
        self.results = Array(repeating: nil, count: commands.count)
        self.pending = commands.indices.map { Item(index: $0, to: nil, asking: false) }
    }

    var hasPending: Bool { !self.pending.isEmpty }

    /// Every reply, in the commands' order.
    var replies: [RedisClient.Reply] {
        self.results.map {
            $0 ?? RedisClient.Reply(result: .failure(RedisClientError(.connectionClosed, "no reply")), trailer: nil)
        }
    }

    /// Takes what is pending, grouped by the primary to send it to, in first-seen order; a
    /// command whose slot no primary serves fails here.
    mutating func route(with map: RedisClusterSlotMap) -> [(RedisAddress, [Item])] {
        var groups: [RedisAddress: [Item]] = [:]
        var order: [RedisAddress] = []
        for item in self.pending {
            let slot = self.commands[item.index].slot ?? 0
            guard let address = item.to ?? map.primary(forSlot: slot) else {
                let error = RedisClientError(.notSent, "no primary serves slot \(slot) (the cluster is incomplete)")
                self.fail([item], error)
                continue
            }
            if groups[address] == nil { order.append(address) }
            groups[address, default: []].append(item)
        }
        self.pending = []
        return order.map { ($0, groups[$0] ?? []) }
    }

    mutating func settle(_ item: Item, _ reply: RedisClient.Reply) {
        self.results[item.index] = reply
    }

    mutating func fail(_ items: [Item], _ error: RedisClientError) {
        for item in items { self.settle(item, RedisClient.Reply(result: .failure(error), trailer: nil)) }
    }

    mutating func failPending(_ error: RedisClientError) {
        self.fail(self.pending, error)
        self.pending = []
    }

    /// Sends `items` again by the next map.
    mutating func retry(_ items: [Item]) {
        self.pending += items.map { Item(index: $0.index, to: nil, asking: false) }
    }

    mutating func redirect(_ item: Item, to address: RedisAddress, asking: Bool) {
        self.pending.append(Item(index: item.index, to: address, asking: asking))
    }
}
