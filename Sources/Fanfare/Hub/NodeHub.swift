internal import HiredisNIO
internal import Logging
internal import NIOCore
import Synchronization

/// The node's streams across all its event loops, and their link to the bus.
///
/// ``ChannelSubscriptions`` decides (which channels to subscribe to, when a stream is
/// attached, when a channel catches up from history); the hub performs its actions. What
/// the machine decides under the hub's lock is queued in that order: Redis commands for
/// the bus's loop, and items for the loops (events, attachments, resets), staged on the
/// bus's loop and handed to every loop in one batch. Each loop's ``LocalHub`` writes a
/// batch to its streams and flushes each stream once.
final class NodeHub: Sendable {
    /// What the loops get, in order.
    enum Item: Sendable {
        case event(BusEvent)
        case attach(StreamID, [StreamPosition])
        case fail(StreamID)
        case reset(String, HistoryPage.Status, position: StreamPosition, from: StreamPosition)
    }

    struct Counts: Sendable {
        /// Local streams per channel (including `client:<id>`), made for a snapshot from
        /// the subscriptions' own counts (not kept twice).
        var channels: [String: Int] = [:]
        var connections = 0
        var clients = 0
        /// Bumped on every change, so the registry rewrites counts only when needed.
        var version = 0
    }

    private enum Command: Sendable {
        case subscribe([String], generation: Int)
        case unsubscribe([String])
    }

    private struct State: Sendable {
        var machine: ChannelSubscriptions
        var counts = Counts()
        var staged: [Item] = []
        var stagingScheduled = false
        var commands: [Command] = []
        var commandsScheduled = false
        /// Head reads to make, batched: one round of pipelined reads for all of them.
        var heads: [(channel: String, generation: Int)] = []
        var headsScheduled = false
        var emptied: [AsyncSignal<Void>] = []
        /// Channels whose stream count changed since the registry last took them.
        var changed = Set<String>()
        /// The newest generation at the last pending check: channels pending since then
        /// or before fail at the next one.
        var pendingMark = 0
    }

    /// Work the machine asked for that happens outside the lock.
    private struct Work {
        var stage = false
        var commands = false
        var heads = false
        var reads: [ChannelSubscriptions.Action] = []

        mutating func merge(_ other: Work) {
            self.stage = self.stage || other.stage
            self.commands = self.commands || other.commands
            self.heads = self.heads || other.heads
            self.reads += other.reads
        }
    }

    private final class Loop: Sendable {
        let hub: NIOLoopBoundBox<LocalHub>
        let inbox = Mutex<[Item]>([])

        init(hub: NIOLoopBoundBox<LocalHub>) {
            self.hub = hub
        }
    }

    private let loops: [ObjectIdentifier: Loop]
    private let loopList: [Loop]
    /// The bus's loop: Redis commands go out from here in order, and events are staged
    /// here so a whole socket read travels to the loops together.
    private let busLoop: any EventLoop
    private let state: Mutex<State>
    private let pendingCheck = Mutex<RepeatedTask?>(nil)
    private let pageSize: Int
    private let pageBytes: Int
    let bus: any EventBus
    private let logger: Logger

    init(
        group: any EventLoopGroup,
        busLoop: any EventLoop,
        bus: any EventBus,
        metrics: NodeMetrics? = nil,
        bufferLimit: Int = 1_024,
        pageSize: Int = 500,
        pageBytes: Int = 256 << 10,
        bufferBytes: Int = 1 << 20,
        logger: Logger
    ) {
        self.busLoop = busLoop
        var loops: [ObjectIdentifier: Loop] = [:]
        for eventLoop in group.makeIterator() {
            let loop = Loop(
                hub: .makeBoxSendingValue(LocalHub(eventLoop: eventLoop, metrics: metrics), eventLoop: eventLoop)
            )
            loops[ObjectIdentifier(eventLoop)] = loop
        }
        self.loops = loops
        self.loopList = Array(loops.values)
        self.bus = bus
        self.pageSize = pageSize
        self.pageBytes = pageBytes
        self.state = Mutex(
            State(machine: ChannelSubscriptions(bufferLimit: bufferLimit, bufferBytes: bufferBytes))
        )
        self.logger = logger
    }

    /// The local hub of `eventLoop`; call only on that loop.
    func localHub(on eventLoop: any EventLoop) -> LocalHub? {
        self.loops[ObjectIdentifier(eventLoop)]?.hub.value
    }

    // MARK: Streams

    /// Adds a stream (on its loop). It is attached, on its loop, once the node is
    /// subscribed to every one of its channels, or failed when Redis does not confirm one.
    func register(_ stream: SSEStreamHandler) {
        self.localHub(on: stream.eventLoop)?.add(stream)
        let (id, channels, client) = (stream.id, stream.channels, ChannelName.client(stream.clientID))
        let work = self.state.withLock { state in
            let work = Self.enqueue(state.machine.join(id, channels: channels), &state)
            state.changed.formUnion(channels)
            if state.machine.streams(on: client) == 1 { state.counts.clients += 1 }
            state.counts.connections += 1
            state.counts.version += 1
            return work
        }
        self.perform(work)
    }

    /// Removes a stream (on its loop) everywhere at once.
    func unregister(_ stream: SSEStreamHandler) {
        self.localHub(on: stream.eventLoop)?.remove(stream)
        let (id, channels, client) = (stream.id, stream.channels, ChannelName.client(stream.clientID))
        let (work, emptied) = self.state.withLock { state in
            let work = Self.enqueue(state.machine.leave(id, channels: channels), &state)
            state.changed.formUnion(channels)
            if state.machine.streams(on: client) == 0 { state.counts.clients -= 1 }
            state.counts.connections -= 1
            state.counts.version += 1
            var emptied: [AsyncSignal<Void>] = []
            if state.counts.connections == 0 {
                emptied = state.emptied
                state.emptied = []
            }
            return (work, emptied)
        }
        self.perform(work)
        for signal in emptied { signal.succeed(()) }
    }

    /// Returns once the node has no streams (at once when it has none).
    func waitUntilEmpty() async throws {
        let signal = AsyncSignal<Void>()
        let empty = self.state.withLock { state in
            if state.counts.connections == 0 { return true }
            state.emptied.append(signal)
            return false
        }
        if empty { return }
        try await signal.wait()
    }

    func snapshot() -> Counts {
        self.state.withLock { state in
            var counts = state.counts
            counts.channels = state.machine.streamCounts
            return counts
        }
    }

    func connections(on channel: String) -> Int {
        self.state.withLock { $0.machine.streams(on: channel) }
    }

    /// The counts, with the channels whose stream count changed since the last call (0 for
    /// a channel without streams now), or with every channel (`all`).
    ///
    /// The registry writes only what changed: with 16,700 streams a node has as many
    /// `client:<id>` channels, and rewriting all of them every second cost more than
    /// the streams themselves.
    func countChanges(all: Bool) -> (counts: Counts, changed: [(channel: String, streams: Int)]) {
        self.state.withLock { state in
            defer { state.changed.removeAll() }
            if all {
                return (state.counts, state.machine.streamCounts.map { ($0.key, $0.value) })
            }
            return (state.counts, state.changed.map { ($0, state.machine.streams(on: $0)) })
        }
    }

    // MARK: The bus

    /// An event from the bus (any thread).
    func receive(_ event: BusEvent) {
        let work = self.state.withLock { state in Self.enqueue(state.machine.received(event), &state) }
        self.perform(work)
    }

    /// The bus's subscription was lost and came back: every channel catches up, or only
    /// `channels` when those alone were subscribed again elsewhere (a moved slot, a shard's
    /// subscriber that came back).
    func reconnected(_ channels: [String]? = nil) {
        let work = self.state.withLock { state in
            Self.enqueue(state.machine.reconnected(only: channels.map(Set.init)), &state)
        }
        self.logger.info("hub.backfill.started", metadata: ["channels": "\(channels.map { "\($0.count)" } ?? "all")"])
        self.perform(work)
    }

    /// The subscriber is ready for the first time: channels whose SUBSCRIBE failed while
    /// it was connecting are confirmed now.
    func subscriberReady() {
        let work = self.state.withLock { state in Self.enqueue(state.machine.subscriberReady(), &state) }
        self.perform(work)
    }

    /// Starts failing channels that stay pending past `timeout` (checked every `timeout`,
    /// so one fails after one to two of them), on the bus's loop.
    func startPendingCheck(timeout: TimeAmount = .seconds(10)) {
        let task = self.busLoop.scheduleRepeatedTask(initialDelay: timeout, delay: timeout) { [weak self] _ in
            guard let self else { return }
            let work = self.state.withLock { state in
                let actions = state.machine.failPending(since: state.pendingMark)
                state.pendingMark = state.machine.generation
                if !actions.isEmpty {
                    self.logger.warning(
                        "hub.subscribe.timeout",
                        metadata: ["effect": "streams waiting for a subscription are closed with a retry"]
                    )
                }
                return Self.enqueue(actions, &state)
            }
            self.perform(work)
        }
        self.pendingCheck.withLock { $0 = task }
    }

    func stopPendingCheck() {
        self.pendingCheck.withLock { $0?.cancel() }
    }

    /// Queues the machine's actions in their order; returns what to start outside the lock.
    private static func enqueue(_ actions: [ChannelSubscriptions.Action], _ state: inout State) -> Work {
        var work = Work()
        for action in actions {
            switch action {
            case .subscribe(let channels, let generation):
                state.commands.append(.subscribe(channels, generation: generation))
            case .unsubscribe(let channels):
                state.commands.append(.unsubscribe(channels))
            case .deliver(let events):
                state.staged.reserveCapacity(state.staged.count + events.count)
                for event in events { state.staged.append(.event(event)) }
            case .attach(let stream, let positions):
                state.staged.append(.attach(stream, positions))
            case .fail(let stream):
                state.staged.append(.fail(stream))
            case .reset(let channel, let status, let position, let from):
                state.staged.append(.reset(channel, status, position: position, from: from))
            case .readHead(let channel, let generation):
                state.heads.append((channel, generation))
            case .readHistory:
                work.reads.append(action)
            }
        }
        if !state.heads.isEmpty, !state.headsScheduled {
            state.headsScheduled = true
            work.heads = true
        }
        if !state.staged.isEmpty, !state.stagingScheduled {
            state.stagingScheduled = true
            work.stage = true
        }
        if !state.commands.isEmpty, !state.commandsScheduled {
            state.commandsScheduled = true
            work.commands = true
        }
        return work
    }

    private func perform(_ work: Work) {
        if work.stage { self.busLoop.execute { self.dispatchStaged() } }
        if work.commands { self.busLoop.execute { self.sendCommands() } }
        if work.heads { self.busLoop.execute { self.readHeads() } }
        for read in work.reads { self.startRead(read) }
    }

    /// On the bus's loop: the queued subscribes and unsubscribes, in the order decided.
    private func sendCommands() {
        let commands = self.state.withLock { state in
            defer {
                state.commands = []
                state.commandsScheduled = false
            }
            return state.commands
        }
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
        self.bus.subscribe(joined.flatMap(\.channels)).whenComplete { result in
            if case .failure(let error) = result, Self.isWaitingForReconnect(error) {
                // The subscriber is reconnecting and keeps the names: the reconnect
                // acknowledges them (``reconnected()``), and the streams wait for it.
                self.logger.debug("hub.subscribe.deferred", metadata: ["error": "\(error)"])
                return
            }
            let work = self.state.withLock { state in
                var work = Work()
                for (channels, generation) in joined {
                    let actions: [ChannelSubscriptions.Action]
                    switch result {
                    case .success: actions = state.machine.subscribed(channels, generation: generation)
                    case .failure: actions = state.machine.subscribeFailed(channels, generation: generation)
                    }
                    work.merge(Self.enqueue(actions, &state))
                }
                return work
            }
            if case .failure(let error) = result {
                self.logger.warning("hub.subscribe.failed", metadata: ["error": "\(error)"])
            }
            self.perform(work)
        }
    }

    /// On the bus's loop: the head reads asked for so far, in one batch (a connection storm
    /// asks for thousands at once: one task and one pipelined round trip, not one of each
    /// per channel). A failed batch is asked for again shortly, for the channels that
    /// still wait for it.
    private func readHeads() {
        let heads = self.state.withLock { state in
            defer {
                state.heads = []
                state.headsScheduled = false
            }
            return state.heads
        }
        guard !heads.isEmpty else { return }
        let bus = self.bus
        Task {
            let work: Work
            do {
                let positions = try await bus.heads(of: heads.map(\.channel))
                work = self.state.withLock { state in
                    var work = Work()
                    for (head, position) in zip(heads, positions) {
                        let actions = state.machine.headRead(head.channel, head: position, generation: head.generation)
                        work.merge(Self.enqueue(actions, &state))
                    }
                    return work
                }
            } catch {
                // Redis is away: ask again shortly; the streams wait meanwhile.
                self.logger.warning("hub.head.failed", metadata: ["channels": "\(heads.count)", "error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(500))
                work = self.state.withLock { state in
                    let again = heads.filter { state.machine.awaitsHead($0.channel, generation: $0.generation) }
                    let actions = again.map {
                        ChannelSubscriptions.Action.readHead($0.channel, generation: $0.generation)
                    }
                    return Self.enqueue(actions, &state)
                }
            }
            self.perform(work)
        }
    }

    /// Reads from history (async, from any thread), then hands the answer to the machine.
    private func startRead(_ action: ChannelSubscriptions.Action) {
        let bus = self.bus
        let (pageSize, pageBytes) = (self.pageSize, self.pageBytes)
        // From a synchronous caller into the bus's async reads: the task is the bridge.
        Task {
            switch action {
            case .readHistory(let channel, let after, let generation):
                let work: Work
                do {
                    let page = try await bus.read(channel, after: after, limit: pageSize, maxBytes: pageBytes)
                    if page.status != .ok {
                        self.logger.warning(
                            "hub.backfill.gap",
                            metadata: ["channel": "\(channel)", "after": "\(after)", "status": "\(page.status)"]
                        )
                    }
                    work = self.state.withLock { state in
                        Self.enqueue(state.machine.historyRead(channel, page: page, generation: generation), &state)
                    }
                } catch {
                    // Redis is away: try again shortly (the subscriber's reconnect, when it
                    // comes, asks for a read of its own).
                    self.logger.warning(
                        "hub.backfill.failed",
                        metadata: ["channel": "\(channel)", "error": "\(error)"]
                    )
                    try? await Task.sleep(for: .milliseconds(500))
                    work = self.state.withLock { state in
                        Self.enqueue(
                            state.machine.historyReadFailed(channel, after: after, generation: generation),
                            &state
                        )
                    }
                }
                self.perform(work)
            default:
                break
            }
        }
    }

    /// A subscribe that failed only because the subscriber is between connections.
    private static func isWaitingForReconnect(_ error: any Error) -> Bool {
        (error as? RedisClientError)?.code == .connectionClosed
    }

    /// On the bus's loop: hands everything staged to every loop, in one batch each.
    private func dispatchStaged() {
        let batch = self.state.withLock { state in
            defer {
                state.staged.removeAll(keepingCapacity: true)
                state.stagingScheduled = false
            }
            return state.staged
        }
        guard !batch.isEmpty else { return }
        for loop in self.loopList {
            let wasEmpty = loop.inbox.withLock { inbox in
                inbox.append(contentsOf: batch)
                return inbox.count == batch.count
            }
            guard wasEmpty else { continue }
            loop.hub.eventLoop.execute {
                let items = loop.inbox.withLock { inbox in
                    defer { inbox.removeAll(keepingCapacity: true) }
                    return inbox
                }
                loop.hub.value.apply(items)
            }
        }
    }

    // MARK: Every stream

    func startHeartbeats(every interval: TimeAmount, frame: ByteBuffer) {
        self.forEachLocalHub { $0.startHeartbeat(every: interval, frame: frame) }
    }

    func stopHeartbeats() {
        self.forEachLocalHub { $0.stop() }
    }

    /// Drain or hand-over: tells every stream why and when to come back (a random
    /// `retry:` up to `jitter` milliseconds, so clients don't all return at once) and
    /// closes it once written.
    func closeAllStreams(_ reason: ControlFrame.CloseReason = .draining, retryJitterMilliseconds jitter: Int) {
        self.forEachLocalHub { hub in
            for stream in hub.allStreams {
                stream.close(reason, retryMilliseconds: Int.random(in: 0...max(0, jitter)))
            }
        }
    }

    /// Runs `body` with every loop's hub, on its loop.
    private func forEachLocalHub(_ body: @escaping @Sendable (LocalHub) -> Void) {
        for loop in self.loopList {
            let hub = loop.hub
            hub.eventLoop.execute { body(hub.value) }
        }
    }
}
