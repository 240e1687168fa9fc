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
    let logger: Logger
    private let prepare: @Sendable (RedisConnection) async throws -> Void
    let state: Mutex<State>
    private let refreshTimer = Mutex<RepeatedTask?>(nil)

    /// A primary's connection. Whoever takes a `connecting` link out of the map completes
    /// its promise: the opener when the connect fails, or what dropped it meanwhile.
    enum Link {
        case connecting(EventLoopPromise<RedisConnection>)
        case connected(RedisConnection)
    }

    struct State {
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
    struct Superseded: Error {}

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

    // MARK: Connections

    /// The open connection to `address`, without waiting, if there is one.
    func connected(to address: RedisAddress) -> RedisConnection? {
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
