public import Logging
public import NIOCore
import Synchronization

/// Commands to a Redis deployment, routed by hash slot: one server (found directly or
/// through Sentinel, which serves every slot), or a Redis Cluster.
///
/// Every connection is on ``eventLoop``: one per primary, opened on first use (every
/// caller meanwhile waits for that one attempt) and prepared by the owner's `prepare`
/// step before any command goes out on it, so a step such as loading a function library
/// runs once on every primary, including one that appears later.
///
/// With a cluster the slot map comes from `CLUSTER SLOTS`, asked of a connected primary or
/// else of the configured seeds. It is asked again when a primary cannot be reached or its
/// connection closes, after a `MOVED` reply, and every ``refreshInterval``. A `MOVED`
/// reply moves its slot at once and the command goes again to the new owner; an `ASK`
/// reply sends `ASKING` and the command, once, to the node named. A command whose primary
/// cannot be reached did not run, and waits for the next map; one whose reply never came
/// fails, since it may have run.
public final class RedisClient: Sendable {
    /// One command and the slot of its keys (`nil`: it has none, any primary will do).
    public struct Command: Sendable {
        public var command: String
        public var arguments: [RESPArgument]
        public var slot: Int?

        public init(_ command: String, _ arguments: [RESPArgument], slot: Int?) {
            self.command = command
            self.arguments = arguments
            self.slot = slot
        }
    }

    /// A command's raw reply (an error reply is a value), and the reply of the trailer
    /// that followed it on the same connection, if one was asked for.
    public struct Reply: Sendable {
        public var result: Result<RESPValue, any Error>
        public var trailer: Result<RESPValue, any Error>?

        public init(result: Result<RESPValue, any Error>, trailer: Result<RESPValue, any Error>?) {
            self.result = result
            self.trailer = trailer
        }
    }

    public let eventLoop: any EventLoop
    public let configuration: RedisConfiguration
    /// How often the slot map is asked for again even when nothing suggested a change.
    public let refreshInterval: TimeAmount
    private let logger: Logger
    private let prepare: @Sendable (RedisConnection) async throws -> Void
    private let state: Mutex<State>
    private let refreshTimer = Mutex<RepeatedTask?>(nil)

    /// A primary's connection. Whoever takes a `connecting` link out of the map completes
    /// its promise: the opener when the connect fails, or what dropped it meanwhile.
    private enum Link {
        case connecting(EventLoopPromise<RedisConnection>)
        case connected(RedisConnection)
    }

    private struct State {
        var map: RedisClusterSlotMap?
        var links: [RedisAddress: Link] = [:]
        var refreshing: EventLoopFuture<RedisClusterSlotMap>?
        /// Behind Sentinel: the master a `+switch-master` named, tried by the next connect.
        var announcedMaster: RedisAddress?
        var closed = false

        /// The open connection to `address`, if there is one.
        func connection(at address: RedisAddress) -> RedisConnection? {
            if case .connected(let connection) = self.links[address], connection.isActive { return connection }
            return nil
        }

        /// Takes the links `drop` picks out of the map: their connections, and the promises
        /// of those still connecting, which the caller completes (see ``Link``).
        mutating func takeLinks(
            where drop: (RedisAddress, Link) -> Bool
        ) -> (connections: [RedisConnection], connecting: [(RedisAddress, EventLoopPromise<RedisConnection>)]) {
            var connections: [RedisConnection] = []
            var connecting: [(RedisAddress, EventLoopPromise<RedisConnection>)] = []
            for (address, link) in self.links where drop(address, link) {
                switch link {
                case .connected(let connection): connections.append(connection)
                case .connecting(let promise): connecting.append((address, promise))
                }
                self.links[address] = nil
            }
            return (connections, connecting)
        }
    }

    /// A connect that ``reconnect(to:)`` dropped while it was under way: its callers get
    /// the next one instead.
    private struct Superseded: Error {}

    /// How many times one command follows a redirection (or waits for a new map) before
    /// its failure is the caller's.
    static let maximumHops = 5

    /// - Parameters:
    ///   - configuration: a server, a Sentinel master, or cluster seeds.
    ///   - eventLoop: owns every connection.
    ///   - refreshInterval: how often a cluster's slot map is asked for regardless.
    ///   - logger: connection and topology messages.
    ///   - prepare: runs on each new connection before it is used; a failure closes it.
    public init(
        configuration: RedisConfiguration,
        eventLoop: any EventLoop,
        refreshInterval: TimeAmount = .seconds(5),
        logger: Logger,
        prepare: @escaping @Sendable (RedisConnection) async throws -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.refreshInterval = refreshInterval
        self.logger = logger
        self.prepare = prepare
        var state = State()
        if configuration.clusterSeeds == nil {
            state.map = RedisClusterSlotMap(single: Self.singleAddress(configuration))
        }
        self.state = Mutex(state)
    }

    /// Whether the configuration is a Redis Cluster.
    public var isCluster: Bool { self.configuration.clusterSeeds != nil }

    /// A lone server is keyed by its configured address, whichever master Sentinel names.
    private static func singleAddress(_ configuration: RedisConfiguration) -> RedisAddress {
        RedisAddress(host: configuration.host, port: configuration.port)
    }

    /// Starts the periodic refresh of a cluster's slot map (nothing for a lone server).
    public func start() {
        guard self.isCluster else { return }
        let task = self.eventLoop.scheduleRepeatedTask(
            initialDelay: self.refreshInterval,
            delay: self.refreshInterval
        ) { [weak self] _ in
            guard let self else { return }
            Task { _ = try? await self.refresh() }
        }
        self.refreshTimer.withLock { $0 = task }
    }

    // MARK: Commands

    /// Sends one command to the primary of `slot` and returns its raw reply, following
    /// redirections.
    public func reply(to command: String, arguments: [RESPArgument], slot: Int?) async throws -> RESPValue {
        // One look at the map and the links, under one lock: this is every publish's path.
        if let connection = self.state.withLock({ state in
            state.map?.primary(forSlot: slot ?? 0).flatMap { state.connection(at: $0) }
        }) {
            let reply = try await connection.sendFuture(command, arguments: arguments).valueUnlessCancelled()
            guard self.redirection(in: reply) != nil else { return reply }
        }
        return try await self.replies(to: [Command(command, arguments, slot: slot)])[0].result.get()
    }

    /// Sends one command and returns its reply; an error reply is thrown as
    /// ``RedisClientError/Code/serverError``.
    public func send(_ command: String, arguments: [RESPArgument] = [], slot: Int?) async throws -> RESPValue {
        try RedisConnection.throwingServerError(try await self.reply(to: command, arguments: arguments, slot: slot))
    }

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
        var results = [Reply?](repeating: nil, count: commands.count)
        // What is still to send: the command's index, the node a redirection named, and
        // whether that was an ASK (send ASKING first).
        var pending: [(index: Int, to: RedisAddress?, asking: Bool)] = commands.indices.map { ($0, nil, false) }
        var hop = 0
        while !pending.isEmpty {
            hop += 1
            let map: RedisClusterSlotMap
            do {
                map = try await self.slotMap()
            } catch {
                let notSent = Self.notSent(error)
                for item in pending { results[item.index] = Reply(result: .failure(notSent), trailer: nil) }
                break
            }
            var groups: [RedisAddress: [(index: Int, asking: Bool)]] = [:]
            var order: [RedisAddress] = []
            for (index, to, asking) in pending {
                guard let address = to ?? map.primary(forSlot: commands[index].slot ?? 0) else {
                    results[index] = Reply(
                        result: .failure(
                            RedisClientError(
                                .notSent,
                                "no primary serves slot \(commands[index].slot ?? 0) (the cluster is incomplete)"
                            )
                        ),
                        trailer: nil
                    )
                    continue
                }
                if groups[address] == nil { order.append(address) }
                groups[address, default: []].append((index, asking))
            }
            pending = []
            var sent:
                [(
                    group: [(index: Int, asking: Bool)], replies: [EventLoopFuture<RESPValue>],
                    trailer: EventLoopFuture<RESPValue>?
                )] = []
            for address in order {
                let group = groups[address] ?? []
                let connection: RedisConnection
                do {
                    connection = try await self.connection(to: address)
                } catch {
                    // Nothing went out: in a cluster the next map may name another primary
                    // (a lone server's connection already tried, and failed, once).
                    if hop < Self.maximumHops && self.isCluster {
                        pending += group.map { ($0.index, nil, false) }
                    } else {
                        let notSent = Self.notSent(error)
                        for item in group { results[item.index] = Reply(result: .failure(notSent), trailer: nil) }
                    }
                    continue
                }
                let write = { @Sendable () -> ([EventLoopFuture<RESPValue>], EventLoopFuture<RESPValue>?) in
                    var futures: [EventLoopFuture<RESPValue>] = []
                    for item in group {
                        if item.asking { _ = connection.sendFuture("ASKING", arguments: []) }
                        futures.append(
                            connection.sendFuture(
                                commands[item.index].command,
                                arguments: commands[item.index].arguments
                            )
                        )
                    }
                    return (futures, trailer.map { connection.sendFuture($0.command, arguments: $0.arguments) })
                }
                // ASKING holds for the next command of the connection only: written in one
                // turn of its loop, no other caller's command comes in between.
                let (futures, trailerFuture) =
                    group.contains(where: \.asking) && !connection.eventLoop.inEventLoop
                    ? ((try? await connection.eventLoop.submit(write).get()) ?? ([], nil)) : write()
                guard futures.count == group.count else {
                    let notSent = RedisClientError(.notSent, "the connection's event loop is shutting down")
                    for item in group { results[item.index] = Reply(result: .failure(notSent), trailer: nil) }
                    continue
                }
                sent.append((group, futures, trailerFuture))
            }
            var moved = false
            var tryAgain = false
            for (group, futures, trailerFuture) in sent {
                var trailerResult: Result<RESPValue, any Error>?
                if let trailerFuture {
                    trailerResult = await Self.result(of: trailerFuture)
                }
                for (item, future) in zip(group, futures) {
                    let result = await Self.result(of: future)
                    if case .success(let reply) = result, hop < Self.maximumHops,
                        let redirection = self.redirection(in: reply)
                    {
                        switch redirection {
                        case .moved(let to):
                            moved = true
                            pending.append((item.index, to, false))
                        case .ask(let to):
                            pending.append((item.index, to, true))
                        case .tryAgain:
                            tryAgain = true
                            pending.append((item.index, nil, false))
                        }
                        continue
                    }
                    results[item.index] = Reply(result: result, trailer: trailerResult)
                }
            }
            if moved { self.refreshInBackground() }
            if !pending.isEmpty && (sent.isEmpty || tryAgain) {
                // Nothing could be sent at all, or a slot is being migrated: give the cluster
                // a moment to settle.
                try? await Task.sleep(for: .milliseconds(50 * hop))
            }
        }
        return results.map {
            $0 ?? Reply(result: .failure(RedisClientError(.connectionClosed, "no reply")), trailer: nil)
        }
    }

    private static func notSent(_ error: any Error) -> RedisClientError {
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

    private enum Redirection {
        case moved(RedisAddress)
        case ask(RedisAddress)
        case tryAgain
    }

    /// A reply that asks for the command to go elsewhere or again. A `MOVED` moves its slot
    /// in the map at once.
    private func redirection(in reply: RESPValue) -> Redirection? {
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

    // MARK: Connections

    /// The open connection to `address`, without waiting, if there is one.
    private func connected(to address: RedisAddress) -> RedisConnection? {
        self.state.withLock { $0.connection(at: address) }
    }

    /// The connection to the primary at `address`, opened and prepared on first use.
    public func connection(to address: RedisAddress) async throws -> RedisConnection {
        try await self.connection(to: address, attempt: 1)
    }

    private func connection(to address: RedisAddress, attempt: Int) async throws -> RedisConnection {
        let future = try self.state.withLock { state -> EventLoopFuture<RedisConnection> in
            guard !state.closed else { throw RedisClientError(.clientClosed, "the Redis client is closed") }
            switch state.links[address] {
            case .connected(let connection) where connection.isActive:
                return self.eventLoop.makeSucceededFuture(connection)
            case .connecting(let promise):
                return promise.futureResult
            case .connected, .none:
                let promise = self.eventLoop.makePromise(of: RedisConnection.self)
                state.links[address] = .connecting(promise)
                // Taken here, by the link it is for: tried once, since a later connect asks
                // the sentinels, who agree by then.
                let announced = state.announcedMaster
                state.announcedMaster = nil
                // In a task of its own, so that callers can let go of a connect that hangs
                // (a master that stopped answering) when the link is dropped.
                Task { await self.open(address, announcedMaster: announced, fulfilling: promise) }
                return promise.futureResult
            }
        }
        do {
            return try await future.valueUnlessCancelled()
        } catch is Superseded {
            // The master moved while this connect was under way: connect again, there.
            guard attempt < 3 else {
                throw RedisClientError(.notSent, "the connection to \(address) was dropped while it was being opened")
            }
            return try await self.connection(to: address, attempt: attempt + 1)
        }
    }

    /// Opens the link's connection; keeps it and fulfils `promise` unless the link was
    /// dropped meanwhile (then whoever dropped it completed the promise).
    private func open(
        _ address: RedisAddress,
        announcedMaster: RedisAddress?,
        fulfilling promise: EventLoopPromise<RedisConnection>
    ) async {
        let isMine = { (state: State) -> Bool in
            guard !state.closed, case .connecting(let current) = state.links[address] else { return false }
            return current.futureResult === promise.futureResult
        }
        do {
            let connection = try await self.open(address, announcedMaster: announcedMaster)
            let kept = self.state.withLock { state in
                guard isMine(state) else { return false }
                state.links[address] = .connected(connection)
                return true
            }
            if kept {
                promise.succeed(connection)
            } else {
                await connection.close()
            }
        } catch {
            let failed = self.state.withLock { state in
                guard isMine(state) else { return false }
                state.links[address] = nil
                return true
            }
            guard failed else { return }
            promise.fail(error)
            if self.isCluster { self.refreshInBackground() }
        }
    }

    private func open(_ address: RedisAddress, announcedMaster: RedisAddress?) async throws -> RedisConnection {
        let target = self.isCluster ? self.configuration.server(address) : self.configuration
        let connection = try await RedisConnection.connect(
            configuration: target,
            eventLoop: self.eventLoop,
            logger: self.logger,
            announcedMaster: announcedMaster
        )
        do {
            try await self.prepare(connection)
        } catch {
            await connection.close()
            throw error
        }
        if self.isCluster {
            // A primary that went away may have handed its slots to another.
            connection.channel.closeFuture.whenComplete { [weak self] _ in
                guard let self, !self.state.withLock({ $0.closed }) else { return }
                self.refreshInBackground()
            }
        }
        return connection
    }

    /// Every open connection (one per primary reached so far).
    public var connections: [RedisConnection] {
        self.state.withLock { state in
            state.links.values.compactMap { link in
                if case .connected(let connection) = link, connection.isActive { return connection }
                return nil
            }
        }
    }

    /// Whether at least one connection is open.
    public var isConnected: Bool { !self.connections.isEmpty }

    // MARK: The slot map

    /// The current slot map; asks for one when there is none yet.
    public func slotMap() async throws -> RedisClusterSlotMap {
        if let map = self.state.withLock({ $0.map }) { return map }
        return try await self.refresh()
    }

    /// The current slot map without asking, `nil` when none is known yet.
    public var knownSlotMap: RedisClusterSlotMap? { self.state.withLock { $0.map } }

    private func refreshInBackground() {
        Task { _ = try? await self.refresh() }
    }

    /// Asks the cluster for its slot map now (callers meanwhile share the one request);
    /// for a lone server, the fixed map.
    @discardableResult
    public func refresh() async throws -> RedisClusterSlotMap {
        guard let seeds = self.configuration.clusterSeeds else { return try await self.slotMap() }
        let (future, promise) = self.state.withLock {
            state -> (EventLoopFuture<RedisClusterSlotMap>, EventLoopPromise<RedisClusterSlotMap>?) in
            if let refreshing = state.refreshing { return (refreshing, nil) }
            let promise = self.eventLoop.makePromise(of: RedisClusterSlotMap.self)
            state.refreshing = promise.futureResult
            return (promise.futureResult, promise)
        }
        if let promise {
            let known = self.state.withLock { $0.map?.primaries ?? [] }
            var candidates = known
            for seed in seeds where !candidates.contains(seed) { candidates.append(seed) }
            var failures: [String] = []
            var found: RedisClusterSlotMap?
            for address in candidates {
                do {
                    let map = try await self.askForSlots(address)
                    guard map.coversEverySlot || address == candidates.last else {
                        failures.append("\(address): not every slot has a primary")
                        continue
                    }
                    found = map
                    break
                } catch {
                    failures.append("\(address): \(error)")
                }
            }
            if let found {
                let (dropped, abandoned) = self.state.withLock { state in
                    let previous = state.map
                    state.map = found
                    state.refreshing = nil
                    let taken = state.takeLinks { address, _ in !found.primaries.contains(address) }
                    if let previous, previous.primaries != found.primaries {
                        self.logger.info(
                            "redis.cluster.primaries",
                            metadata: [
                                "redis.primaries": "\(found.primaries.map(\.description).joined(separator: ","))"
                            ]
                        )
                    }
                    return taken
                }
                for connection in dropped {
                    // A former primary: what it still answers is read, then it closes.
                    self.eventLoop.scheduleTask(in: .seconds(10)) { connection.channel.close(promise: nil) }
                }
                for (address, promise) in abandoned {
                    // Nothing was sent on it: the callers' commands go by the new map.
                    promise.fail(RedisClientError(.notSent, "\(address) is no longer a primary"))
                }
                promise.succeed(found)
            } else {
                self.state.withLock { $0.refreshing = nil }
                promise.fail(
                    RedisClientError(
                        .connectionClosed,
                        "no cluster node gave its slot map: \(failures.joined(separator: "; "))"
                    )
                )
            }
        }
        return try await future.get()
    }

    /// `CLUSTER SLOTS` of the node at `address`, on its open connection or a short-lived one
    /// (a seed may be a replica, which must not be prepared like a primary).
    private func askForSlots(_ address: RedisAddress) async throws -> RedisClusterSlotMap {
        if let connection = self.connected(to: address) {
            return try RedisClusterSlotMap(
                slots: try await connection.send("CLUSTER", "SLOTS"),
                askedHost: address.host
            )
        }
        var target = self.configuration.server(address)
        target.connectTimeout = min(target.connectTimeout, .seconds(1))
        let connection = try await RedisConnection.connect(
            configuration: target,
            eventLoop: self.eventLoop,
            logger: self.logger
        )
        defer { Task { await connection.close() } }
        return try RedisClusterSlotMap(slots: try await connection.send("CLUSTER", "SLOTS"), askedHost: address.host)
    }

    /// Behind Sentinel, the master moved to `master` (a ``RedisSentinelWatcher`` heard the
    /// sentinels announce it): lets go of every connection that is not there, so the next
    /// command connects to it. The old master may still be up and take writes that nobody
    /// will read. Commands waiting for a reply on a dropped connection fail as
    /// ``RedisClientError/Code/connectionClosed`` (they may have run); a connect under way
    /// is dropped, and its callers get the next one. Nothing for a cluster.
    public func reconnect(to master: RedisAddress) {
        guard !self.isCluster else { return }
        let (dropped, abandoned) = self.state.withLock { state in
            // Perhaps to the old master, which may never answer: connects under way go too,
            // and their callers connect again.
            let taken = state.takeLinks { _, link in
                guard case .connected(let connection) = link else { return true }
                return !(connection.isActive && connection.isConnected(to: master))
            }
            if state.links.isEmpty { state.announcedMaster = master }
            return taken
        }
        for connection in dropped { connection.channel.close(promise: nil) }
        for (_, promise) in abandoned { promise.fail(Superseded()) }
    }

    /// Closes every connection; later commands fail with ``RedisClientError/Code/clientClosed``.
    public func close() async {
        self.refreshTimer.withLock { $0?.cancel() }
        let (connections, connecting) = self.state.withLock { state in
            state.closed = true
            return state.takeLinks { _, _ in true }
        }
        // An opener closes what it opens (the client is closed).
        for (_, promise) in connecting { promise.fail(RedisClientError(.clientClosed, "the Redis client is closed")) }
        for connection in connections { await connection.close() }
    }
}
