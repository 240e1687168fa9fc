internal import HiredisNIO
internal import Logging
internal import NIOCore

/// The hub's state, on the bus's loop alone: no lock on it.
///
/// ``ChannelSubscriptions`` decides (which channels to subscribe to, when a stream is
/// attached, when a channel catches up from history); this performs its actions as they
/// come. Redis commands decided in one loop turn go out together at its end, and so do the
/// items for the streams' loops (events, attachments, resets): a whole socket read of the
/// subscriber reaches each loop as one batch. Head and history reads are tasks that prefer
/// this loop, so Redis is asked and answers here, and the answer is taken without a hop.
final class BusHub {
    private enum Command {
        case subscribe([String], generation: Int)
        case unsubscribe([String])
    }

    private let busLoop: any EventLoop
    private let loops: [NodeHub.Loop]
    private let bus: any EventBus
    private let totals: HubTotals
    /// Runs the hub's tasks on the bus's loop.
    private let executor: EventLoopTaskExecutor
    private let pageSize: Int
    private let pageBytes: Int
    /// How long a turn's items may wait for more before they go out (zero: at the end of
    /// the turn).
    private let writeDelay: TimeAmount
    private let logger: Logger

    private(set) var machine: ChannelSubscriptions
    private var connections = 0
    private var clients = 0
    private var version = 0
    /// Channels whose stream count changed since the registry last took them.
    private var changed = Set<String>()
    /// Items for the loops, handed over at the end of the turn.
    private var staged: [NodeHub.Item] = []
    private var commands: [Command] = []
    /// Head reads to make, batched: one round of pipelined reads for all of them.
    private var heads: [(channel: String, generation: Int)] = []
    private var stagedFlush = false
    private var commandsFlush = false
    private var headsFlush = false
    /// The newest generation at the last pending check: channels pending since then or
    /// before fail at the next one.
    private var pendingMark = 0
    private var pendingCheck: Scheduled<Void>?

    init(
        busLoop: any EventLoop,
        loops: [NodeHub.Loop],
        bus: any EventBus,
        totals: HubTotals,
        machine: ChannelSubscriptions,
        pageSize: Int,
        pageBytes: Int,
        writeDelay: TimeAmount = .zero,
        logger: Logger
    ) {
        self.busLoop = busLoop
        self.loops = loops
        self.bus = bus
        self.totals = totals
        self.executor = EventLoopTaskExecutor(busLoop)
        self.machine = machine
        self.pageSize = pageSize
        self.pageBytes = pageBytes
        self.writeDelay = writeDelay
        self.logger = logger
    }

    // MARK: Streams and counts

    func join(_ stream: StreamID, channels: [String], client: String) {
        self.perform(self.machine.join(stream, channels: channels))
        self.changed.formUnion(channels)
        if self.machine.streams(on: client) == 1 { self.clients += 1 }
        self.connections += 1
        self.countsChanged()
    }

    func leave(_ stream: StreamID, channels: [String], client: String) {
        self.perform(self.machine.leave(stream, channels: channels))
        self.changed.formUnion(channels)
        if self.machine.streams(on: client) == 0 { self.clients -= 1 }
        self.connections -= 1
        self.countsChanged()
    }

    private func countsChanged() {
        self.version += 1
        self.totals.update(
            .init(connections: self.connections, clients: self.clients, channels: self.machine.channelCount)
        )
    }

    func counts() -> NodeHub.Counts {
        NodeHub.Counts(
            channels: self.machine.streamCounts,
            connections: self.connections,
            clients: self.clients,
            version: self.version
        )
    }

    func countChanges(all: Bool) -> (counts: NodeHub.Counts, changed: [(channel: String, streams: Int)]) {
        defer { self.changed.removeAll() }
        let counts = NodeHub.Counts(connections: self.connections, clients: self.clients, version: self.version)
        if all {
            return (counts, self.machine.streamCounts.map { ($0.key, $0.value) })
        }
        return (counts, self.changed.map { ($0, self.machine.streams(on: $0)) })
    }

    // MARK: The bus

    func received(_ event: BusEvent) {
        self.perform(self.machine.received(event))
    }

    func reconnected(_ channels: [String]?) {
        self.perform(self.machine.reconnected(only: channels.map(Set.init)))
    }

    func subscriberReady() {
        self.perform(self.machine.subscriberReady())
    }

    func startPendingCheck(timeout: TimeAmount) {
        self.pendingCheck?.cancel()
        self.pendingCheck = self.busLoop.assumeIsolated().scheduleTask(in: timeout) {
            let actions = self.machine.failPending(since: self.pendingMark)
            self.pendingMark = self.machine.generation
            if !actions.isEmpty {
                self.logger.warning(
                    "hub.subscribe.timeout",
                    metadata: ["effect": "streams waiting for a subscription are closed with a retry"]
                )
            }
            self.perform(actions)
            self.startPendingCheck(timeout: timeout)
        }
    }

    func stopPendingCheck() {
        self.pendingCheck?.cancel()
        self.pendingCheck = nil
    }

    /// A disconnect of `channel`'s streams, in order behind the events staged before it;
    /// every loop answers to `tally`.
    func disconnect(_ channel: String, lease: String?, frame: ByteBuffer, tally: DisconnectTally) {
        self.staged.append(.disconnect(channel, lease: lease, frame, tally))
        self.scheduleFlushes()
    }

    // MARK: Performing the machine's actions

    /// Performs the machine's actions in their order: what goes to the loops and to Redis
    /// is queued for the end of the turn, reads start now.
    private func perform(_ actions: [ChannelSubscriptions.Action]) {
        for action in actions {
            switch action {
            case .subscribe(let channels, let generation):
                self.commands.append(.subscribe(channels, generation: generation))
            case .unsubscribe(let channels):
                self.commands.append(.unsubscribe(channels))
            case .deliver(let events):
                self.staged.reserveCapacity(self.staged.count + events.count)
                for event in events { self.staged.append(.event(event)) }
            case .attach(let stream, let positions):
                self.staged.append(.attach(stream, positions))
            case .fail(let stream):
                self.staged.append(.fail(stream))
            case .reset(let channel, let status, let position, let from):
                self.staged.append(.reset(channel, status, position: position, from: from))
            case .readHead(let channel, let generation):
                self.heads.append((channel, generation))
            case .readHistory(let channel, let after, let generation):
                self.readHistory(channel, after: after, generation: generation)
            }
        }
        self.scheduleFlushes()
    }

    /// Sends what is staged for the loops and for Redis at the end of the turn (the
    /// loops' items after the write delay, when there is one).
    private func scheduleFlushes() {
        if !self.staged.isEmpty, !self.stagedFlush {
            self.stagedFlush = true
            if self.writeDelay > .zero {
                // Write coalescing: what arrives meanwhile goes out in the same writes.
                self.busLoop.assumeIsolated().scheduleTask(in: self.writeDelay) {
                    self.stagedFlush = false
                    self.dispatchStaged()
                }
            } else {
                // Behind the turn's other work too: a publish whose answer was read in this
                // turn is answered before the fan-out's writes. The publisher waits for its
                // answer; the streams get their write a moment later either way.
                self.atEndOfTurn {
                    $0.atEndOfTurn {
                        $0.stagedFlush = false
                        $0.dispatchStaged()
                    }
                }
            }
        }
        if !self.commands.isEmpty, !self.commandsFlush {
            self.commandsFlush = true
            self.atEndOfTurn {
                $0.commandsFlush = false
                $0.sendCommands()
            }
        }
        if !self.heads.isEmpty, !self.headsFlush {
            self.headsFlush = true
            self.atEndOfTurn {
                $0.headsFlush = false
                $0.readHeads()
            }
        }
    }

    /// Runs `body` after what the loop has to do now (the rest of a socket read included).
    private func atEndOfTurn(_ body: @escaping (BusHub) -> Void) {
        self.busLoop.assumeIsolated().execute { body(self) }
    }

    /// Hands what is staged to the loops that have a stream concerned, in one batch each.
    private func dispatchStaged() {
        guard !self.staged.isEmpty else { return }
        let batch = self.staged
        self.staged.removeAll(keepingCapacity: true)
        if self.loops.count == 1 {
            self.loops[0].deliver(batch)
            return
        }
        var batches = [[NodeHub.Item]](repeating: [], count: self.loops.count)
        // Consecutive items of one channel (a broadcast's events) share one look-up.
        var last: (channel: String, loops: UInt64)?
        for item in batch {
            let mask: UInt64
            switch item {
            case .event(let event):
                if let last, last.channel == event.channel {
                    mask = last.loops
                } else {
                    mask = self.machine.loops(of: event.channel)
                    last = (event.channel, mask)
                }
            case .reset(let channel, _, _, _):
                mask = self.machine.loops(of: channel)
            case .attach(let stream, _), .fail(let stream):
                mask = stream.loopBit
            case .disconnect:
                // Every loop answers, with none if it has no stream of the channel.
                mask = .max
            }
            for index in batches.indices where Self.contains(mask, index) {
                batches[index].append(item)
            }
        }
        for (loop, items) in zip(self.loops, batches) where !items.isEmpty {
            loop.deliver(items)
        }
    }

    /// Whether a loop set has loop `index` (the last bit stands for every loop from 63).
    private static func contains(_ mask: UInt64, _ index: Int) -> Bool {
        mask & (1 << UInt64(min(index, 63))) != 0
    }

    /// The queued subscribes and unsubscribes, in the order decided.
    private func sendCommands() {
        let commands = self.commands
        self.commands = []
        var index = commands.startIndex
        while index < commands.endIndex {
            switch commands[index] {
            case .subscribe:
                // Consecutive subscribes go out as one SUBSCRIBE (a connection storm decides
                // one per stream); each generation is then acknowledged on its own.
                var joined: [(channels: [String], generation: Int)] = []
                while index < commands.endIndex, case .subscribe(let channels, let generation) = commands[index] {
                    joined.append((channels, generation))
                    index += 1
                }
                self.subscribe(joined)
            case .unsubscribe(let channels):
                self.bus.unsubscribe(channels)
                index += 1
            }
        }
    }

    private func subscribe(_ joined: [(channels: [String], generation: Int)]) {
        self.bus.subscribe(joined.flatMap(\.channels)).hop(to: self.busLoop).assumeIsolated().whenComplete { result in
            if case .failure(let error) = result, Self.isWaitingForReconnect(error) {
                // The subscriber is reconnecting and keeps the names: the reconnect
                // acknowledges them (``reconnected(_:)``), and the streams wait for it.
                self.logger.debug("hub.subscribe.deferred", metadata: ["error": "\(error)"])
                return
            }
            if case .failure(let error) = result {
                self.logger.warning("hub.subscribe.failed", metadata: ["error": "\(error)"])
            }
            for (channels, generation) in joined {
                switch result {
                case .success: self.perform(self.machine.subscribed(channels, generation: generation))
                case .failure: self.perform(self.machine.subscribeFailed(channels, generation: generation))
                }
            }
        }
    }

    /// A subscribe that failed only because the subscriber is between connections.
    private static func isWaitingForReconnect(_ error: any Error) -> Bool {
        (error as? RedisClientError)?.code == .connectionClosed
    }

    /// The head reads asked for in this turn, in one batch (a connection storm asks for
    /// thousands at once: one task and one pipelined round trip, not one of each per
    /// channel). A failed batch is asked for again shortly, for the channels that still
    /// wait for it.
    private func readHeads() {
        let heads = self.heads
        self.heads = []
        guard !heads.isEmpty else { return }
        let bus = self.bus
        let loop = self.busLoop
        self.run({ try await bus.heads(of: heads.map(\.channel), on: loop) }) { result in
            switch result {
            case .success(let positions):
                for (head, position) in zip(heads, positions) {
                    self.perform(self.machine.headRead(head.channel, head: position, generation: head.generation))
                }
            case .failure(let error):
                // Redis is away: ask again shortly; the streams wait meanwhile.
                self.logger.warning("hub.head.failed", metadata: ["channels": "\(heads.count)", "error": "\(error)"])
                self.busLoop.assumeIsolated().scheduleTask(in: .milliseconds(500)) {
                    let again = heads.filter { self.machine.awaitsHead($0.channel, generation: $0.generation) }
                    self.perform(again.map { .readHead($0.channel, generation: $0.generation) })
                }
            }
        }
    }

    /// Reads a page of `channel`'s history and hands it to the machine.
    private func readHistory(_ channel: String, after: StreamPosition, generation: Int) {
        let (bus, pageSize, pageBytes, loop) = (self.bus, self.pageSize, self.pageBytes, self.busLoop)
        self.run({ try await bus.read(channel, after: after, limit: pageSize, maxBytes: pageBytes, on: loop) }) {
            result in
            switch result {
            case .success(let page):
                if page.status != .ok {
                    self.logger.warning(
                        "hub.backfill.gap",
                        metadata: ["channel": "\(channel)", "after": "\(after)", "status": "\(page.status)"]
                    )
                }
                self.perform(self.machine.historyRead(channel, page: page, generation: generation))
            case .failure(let error):
                // Redis is away: try again shortly (the subscriber's reconnect, when it
                // comes, asks for a read of its own).
                self.logger.warning("hub.backfill.failed", metadata: ["channel": "\(channel)", "error": "\(error)"])
                self.busLoop.assumeIsolated().scheduleTask(in: .milliseconds(500)) {
                    self.perform(self.machine.historyReadFailed(channel, after: after, generation: generation))
                }
            }
        }
    }

    /// Runs `operation` (the bus's reads are async) in a task on the bus's loop, then
    /// `then` with its result, on the loop.
    private func run<Value: Sendable>(
        _ operation: @escaping @Sendable () async throws -> Value,
        then: @escaping (Result<Value, any Error>) -> Void
    ) {
        let promise = self.busLoop.makePromise(of: Value.self)
        // From the loop's synchronous code into the bus's async reads: the task is the
        // bridge, and it prefers this loop, so the reply is read and taken here.
        Task(executorPreference: self.executor) {
            do {
                promise.succeed(try await operation())
            } catch {
                promise.fail(error)
            }
        }
        promise.futureResult.assumeIsolated().whenComplete(then)
    }
}

@available(*, unavailable)
extension BusHub: Sendable {}
