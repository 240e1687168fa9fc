public import Logging
public import NIOCore
internal import NIOPosix

/// One non-blocking connection to Redis, for commands (and pipelining).
///
/// Safe to use from any thread or task: commands hop to the connection's event loop,
/// are written in order, and their replies come back in the same order. Nothing here
/// blocks an event loop. A dropped connection fails every pending command with
/// ``RedisClientError/Code/connectionClosed``; the connection does not reconnect
/// (``RedisSubscriber`` does, for pub/sub).
public final class RedisConnection: Sendable {
    /// The event loop that owns the socket.
    public let eventLoop: any EventLoop
    let channel: any Channel
    private let logger: Logger

    private init(channel: any Channel, logger: Logger) {
        self.channel = channel
        self.eventLoop = channel.eventLoop
        self.logger = logger
    }

    /// Connects, then sends AUTH and SELECT as the configuration asks.
    ///
    /// - Parameters:
    ///   - configuration: where and how to connect.
    ///   - eventLoop: the loop that will own the socket.
    ///   - logger: receives connection-level messages (debug and below).
    ///   - announcedMaster: behind Sentinel, the master a `+switch-master` announced: tried
    ///     first (ROLE must still say master), then the sentinels are asked as usual. The
    ///     first sentinel asked may not have heard of the switch yet.
    public static func connect(
        configuration: RedisConfiguration,
        eventLoop: any EventLoop,
        logger: Logger,
        announcedMaster: RedisAddress? = nil
    ) async throws -> RedisConnection {
        let channel = try await self.connectChannel(
            configuration: configuration,
            eventLoop: eventLoop,
            announcedMaster: announcedMaster
        ).get()
        logger.debug("redis.connected", metadata: ["redis.server": "\(configuration)"])
        return RedisConnection(channel: channel, logger: logger)
    }

    /// Opens a socket with the command pipeline and runs the AUTH/SELECT handshake; with a
    /// sentinel, first finds the master (see ``RedisSentinel``), trying `announcedMaster`
    /// before asking. The future completes on `eventLoop`; on failure the socket is closed.
    static func connectChannel(
        configuration: RedisConfiguration,
        eventLoop: any EventLoop,
        selectDatabase: Bool = true,
        announcedMaster: RedisAddress? = nil
    ) -> EventLoopFuture<any Channel> {
        guard let sentinel = configuration.sentinel else {
            return Self.connectServer(
                configuration: configuration,
                eventLoop: eventLoop,
                selectDatabase: selectDatabase
            )
        }
        let connectMaster: @Sendable (RedisAddress) -> EventLoopFuture<any Channel> = { address in
            var master = configuration
            master.sentinel = nil
            master.host = address.host
            master.port = address.port
            return Self.connectServer(
                configuration: master,
                eventLoop: eventLoop,
                selectDatabase: selectDatabase,
                requireMaster: true
            )
        }
        let asked: @Sendable () -> EventLoopFuture<any Channel> = {
            Self.askForMaster(sentinel, configuration: configuration, index: 0, eventLoop: eventLoop, failures: [])
                .flatMap(connectMaster)
        }
        guard let announcedMaster else { return asked() }
        return connectMaster(announcedMaster).flatMapError { _ in asked() }
    }

    /// Asks the sentinels, from `index` on, where the master is: the first answer wins.
    private static func askForMaster(
        _ sentinel: RedisSentinel,
        configuration: RedisConfiguration,
        index: Int,
        eventLoop: any EventLoop,
        failures: [String],
        tlsFailure: RedisClientError? = nil
    ) -> EventLoopFuture<RedisSentinel.Address> {
        guard index < sentinel.sentinels.count else {
            return eventLoop.makeFailedFuture(
                RedisClientError(
                    .connectionClosed,
                    "no sentinel told where the master '\(sentinel.masterName)' is: \(failures.joined(separator: "; "))",
                    // A TLS failure is kept whole: its sentence is what the operator needs.
                    underlying: tlsFailure
                )
            )
        }
        let address = sentinel.sentinels[index]
        let asked = sentinel.configuration(of: address, from: configuration)
        return Self.connectServer(configuration: asked, eventLoop: eventLoop, selectDatabase: false)
            .flatMap { channel in
                Self.command(
                    "SENTINEL",
                    [RESPArgument("get-master-addr-by-name"), RESPArgument(sentinel.masterName)],
                    on: channel
                )
                .always { _ in channel.close(promise: nil) }
            }
            .flatMapThrowing { reply -> RedisSentinel.Address in
                guard let parts = reply.array, parts.count == 2, let host = parts[0].string,
                    let port = parts[1].string.flatMap({ Int($0) })
                else {
                    throw RedisClientError(.protocolError, "\(address) does not know the master: \(reply)")
                }
                return RedisSentinel.Address(host: host, port: port)
            }
            .flatMapError { error in
                Self.askForMaster(
                    sentinel,
                    configuration: configuration,
                    index: index + 1,
                    eventLoop: eventLoop,
                    failures: failures + ["\(address): \(error)"],
                    tlsFailure: tlsFailure ?? (error as? RedisClientError).flatMap { $0.isTLSFailure ? $0 : nil }
                )
            }
    }

    /// Writes one command on a channel that has the command pipeline; a server error is
    /// a failure.
    private static func command(
        _ name: String,
        _ arguments: [RESPArgument],
        on channel: any Channel
    )
        -> EventLoopFuture<RESPValue>
    {
        var buffer = channel.allocator.buffer(capacity: 64)
        RESPCommandEncoder.encode(name, arguments: arguments, into: &buffer)
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        channel.writeAndFlush(RedisCommandHandler.Request(encoded: buffer, promise: promise), promise: nil)
        return promise.futureResult.flatMapThrowing { try Self.throwingServerError($0) }
    }

    /// Opens a socket to the configured host and runs the handshake; with
    /// `requireMaster`, ROLE must say `master`.
    private static func connectServer(
        configuration: RedisConfiguration,
        eventLoop: any EventLoop,
        selectDatabase: Bool,
        requireMaster: Bool = false
    ) -> EventLoopFuture<any Channel> {
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls = configuration.tls {
                        try tls.addHandlers(
                            to: channel,
                            host: configuration.host,
                            timeout: configuration.connectTimeout
                        )
                    }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPReplyDecoder()))
                    try channel.pipeline.syncOperations.addHandler(
                        RedisCommandHandler(commandTimeout: configuration.commandTimeout),
                        name: RedisConnection.commandHandlerName
                    )
                }
            }
        return bootstrap.connect(host: configuration.host, port: configuration.port)
            .flatMapErrorThrowing { error in
                if case ChannelError.connectTimeout(let amount) = error {
                    throw RedisClientError(.connectTimeout, "could not connect to \(configuration) within \(amount)")
                }
                throw RedisClientError(.connectionClosed, "could not connect to \(configuration)", underlying: error)
            }
            .flatMap { channel in
                // With TLS, nothing is sent before the handshake is done: its failure (an
                // untrusted certificate, most often) is the error, not a closed connection.
                guard configuration.tls != nil else { return channel.eventLoop.makeSucceededFuture(channel) }
                return RedisTLS.handshake(on: channel).map { channel }.flatMapError { error in
                    channel.close(promise: nil)
                    let reason = (error as? RedisClientError)?.message ?? "the TLS handshake failed"
                    return channel.eventLoop.makeFailedFuture(
                        RedisClientError(
                            .connectionClosed,
                            "TLS to \(configuration) failed: \(reason)",
                            underlying: (error as? RedisClientError)?.underlying ?? error
                        )
                    )
                }
            }
            .flatMap { channel in
                var commands: [(String, [RESPArgument])] = []
                if let password = configuration.password {
                    commands.append(
                        (
                            "AUTH",
                            configuration.username.map { [RESPArgument($0), RESPArgument(password)] } ?? [
                                RESPArgument(password)
                            ]
                        )
                    )
                }
                if selectDatabase && configuration.database != 0 {
                    commands.append(("SELECT", [RESPArgument(configuration.database)]))
                }
                if configuration.tls != nil, commands.isEmpty, !requireMaster {
                    // Under TLS 1.3 a server checks the client's certificate after the client
                    // saw the handshake done: one round trip proves it was accepted.
                    commands.append(("PING", []))
                }
                var replies = commands.map { command, arguments in
                    Self.command(command, arguments, on: channel).map { _ in }
                }
                if requireMaster {
                    replies.append(
                        Self.command("ROLE", [], on: channel).flatMapThrowing { reply in
                            guard reply.array?.first?.string == "master" else {
                                throw RedisClientError(
                                    .connectionClosed,
                                    "\(configuration) is not the master (\(reply.array?.first?.string ?? "?")); a failover may be under way"
                                )
                            }
                        }
                    )
                }
                return EventLoopFuture.andAllSucceed(replies, on: channel.eventLoop)
                    .map { channel }
                    .flatMapError { error in
                        channel.close(promise: nil)
                        if configuration.tls != nil, (error as? RedisClientError)?.code != .serverError,
                            !channel.isActive
                        {
                            // Closed right after the handshake: most often a client certificate
                            // the server wants and did not get (or does not trust).
                            return channel.eventLoop.makeFailedFuture(
                                RedisClientError(
                                    .connectionClosed,
                                    "TLS to \(configuration) failed: the server closed the connection after the "
                                        + "handshake (one that asks for a client certificate does so without an "
                                        + "accepted one)",
                                    underlying: error
                                )
                            )
                        }
                        return channel.eventLoop.makeFailedFuture(error)
                    }
            }
    }

    static let commandHandlerName = "redis.command"

    /// Sends one command and waits for its reply.
    ///
    /// A cancelled caller stops waiting at once (`CancellationError`); the command itself
    /// still runs, and its reply is read and dropped.
    ///
    /// - Returns: the reply; an error reply is thrown as ``RedisClientError/Code/serverError``.
    public func send(_ command: String, arguments: [RESPArgument] = []) async throws -> RESPValue {
        try Self.throwingServerError(try await self.sendFuture(command, arguments: arguments).valueUnlessCancelled())
    }

    /// Sends one command and waits for its reply; arguments given inline.
    public func send(_ command: String, _ arguments: RESPArgument...) async throws -> RESPValue {
        try await self.send(command, arguments: arguments)
    }

    /// Sends one command and waits for its raw reply: an error reply is a value here, not
    /// a failure (a failure means no reply came). Cancellation as for ``send(_:arguments:)``.
    package func reply(to command: String, arguments: [RESPArgument]) async throws -> RESPValue {
        try await self.sendFuture(command, arguments: arguments).valueUnlessCancelled()
    }

    /// Sends every command back to back (one write, when called on the loop) and waits for
    /// each raw reply, in order: a command whose reply never came is a failure of its own,
    /// after the replies that did come.
    package func replies(
        to commands: [(command: String, arguments: [RESPArgument])]
    ) async -> [Result<RESPValue, any Error>] {
        let futures = commands.map { self.sendFuture($0.command, arguments: $0.arguments) }
        var replies: [Result<RESPValue, any Error>] = []
        replies.reserveCapacity(futures.count)
        for future in futures {
            do {
                replies.append(.success(try await future.valueUnlessCancelled()))
            } catch {
                replies.append(.failure(error))
            }
        }
        return replies
    }

    /// Sends one command; the future completes on ``eventLoop`` with the raw reply
    /// (an error reply is a value here, not a failure). For callers already on the loop.
    package func sendFuture(_ command: String, arguments: [RESPArgument]) -> EventLoopFuture<RESPValue> {
        var buffer = self.channel.allocator.buffer(capacity: 64)
        RESPCommandEncoder.encode(command, arguments: arguments, into: &buffer)
        return self.sendFuture(encoded: buffer)
    }

    /// Sends an already encoded command (see ``RESPCommandEncoder``).
    package func sendFuture(encoded: ByteBuffer) -> EventLoopFuture<RESPValue> {
        let promise = self.eventLoop.makePromise(of: RESPValue.self)
        let request = RedisCommandHandler.Request(encoded: encoded, promise: promise)
        // A write on a closed channel never reaches the handler; its failure must still
        // fail the command. (If the handler already failed it, this second failure is ignored.)
        let written = self.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { error in
            promise.fail(RedisClientError(.connectionClosed, "the connection to Redis is closed", underlying: error))
        }
        self.channel.write(request, promise: written)
        return promise.futureResult
    }

    /// Sends several commands back to back and returns their replies in order.
    /// Error replies stay values in the result so one bad command does not hide the others.
    public func pipeline(_ commands: [(command: String, arguments: [RESPArgument])]) async throws -> [RESPValue] {
        let futures = commands.map { self.sendFuture($0.command, arguments: $0.arguments) }
        var replies: [RESPValue] = []
        replies.reserveCapacity(futures.count)
        for future in futures {
            replies.append(try await future.get())
        }
        return replies
    }

    /// Whether the socket is still open.
    public var isActive: Bool { self.channel.isActive }

    /// Closes the socket; pending commands fail with ``RedisClientError/Code/connectionClosed``.
    public func close() async {
        do {
            try await self.channel.close()
        } catch ChannelError.alreadyClosed {
            return
        } catch {
            self.logger.debug("redis.close.failed", metadata: ["error": "\(error)"])
        }
    }

    /// Whether the socket is connected to `address` (an IP address and port, as Sentinel
    /// names servers); a host name never matches.
    public func isConnected(to address: RedisAddress) -> Bool {
        address.isRemoteEnd(of: self.channel)
    }

    /// Waits until the connection has closed, for whatever reason.
    public func waitUntilClosed() async {
        try? await self.channel.closeFuture.get()
    }

    static func throwingServerError(_ value: RESPValue) throws -> RESPValue {
        if case .error(let message) = value {
            throw RedisClientError(.serverError, message)
        }
        return value
    }
}
