internal import FanfareAPI
internal import Logging
internal import NIOCore
import Synchronization

/// The node's streams across all its event loops, and their link to the bus.
///
/// The hub's state lives on one loop, the bus's (``BusHub``): the subscriber reads events
/// there and hands them over where it read them, with no lock and no hop. Calls from the
/// streams' loops (a stream opened or closed) reach it by `execute`. What it decides for
/// the streams (events, attachments, resets) goes out once per loop turn, in order, to the
/// loops that have a stream concerned (``LocalHub``, one per loop), each of which writes
/// the batch to its streams and flushes each stream once. Only the totals that metrics,
/// readiness and the drain read from anywhere are kept behind a lock (``HubTotals``).
final class NodeHub: Sendable {
    /// What the loops get, in order.
    enum Item: Sendable {
        case event(BusEvent)
        case attach(StreamID, [StreamPosition])
        case fail(StreamID)
        case reset(String, HistoryPage.Status, position: StreamPosition, from: StreamPosition)
        /// Every stream of the channel on the loop (or only the one holding the lease) ends
        /// after `frame` (a `__disconnect`), the channel's events before it included; the
        /// loop adds how many to the tally.
        case disconnect(String, lease: String?, ByteBuffer, DisconnectTally)
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

    /// One event loop of the node: its streams, and the items on their way to them.
    final class Loop: Sendable {
        let index: Int
        let hub: NIOLoopBoundBox<LocalHub>
        /// Items handed over from the bus's loop, applied on this loop's next turn.
        private let inbox = Mutex<[Item]>([])

        init(index: Int, hub: NIOLoopBoundBox<LocalHub>) {
            self.index = index
            self.hub = hub
        }

        /// Hands `items` to the loop's streams: at once when called on the loop, otherwise
        /// on its next turn (one wake however many batches arrive before it).
        func deliver(_ items: [Item]) {
            let hub = self.hub
            if hub.eventLoop.inEventLoop {
                hub.value.apply(items)
                return
            }
            let wasEmpty = self.inbox.withLock { inbox in
                inbox.append(contentsOf: items)
                return inbox.count == items.count
            }
            guard wasEmpty else { return }
            hub.eventLoop.execute {
                let items = self.inbox.withLock { inbox in
                    defer { inbox.removeAll(keepingCapacity: true) }
                    return inbox
                }
                hub.value.apply(items)
            }
        }
    }

    let loops: [Loop]
    private let loopIndex: [ObjectIdentifier: Int]
    /// The hub's own loop: the bus's.
    let busLoop: any EventLoop
    private let core: NIOLoopBoundBox<BusHub>
    let totals: HubTotals
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
        writeDelay: TimeAmount = .zero,
        logger: Logger
    ) {
        var loops: [Loop] = []
        var loopIndex: [ObjectIdentifier: Int] = [:]
        for eventLoop in group.makeIterator() {
            let hub = NIOLoopBoundBox.makeBoxSendingValue(
                LocalHub(eventLoop: eventLoop, metrics: metrics),
                eventLoop: eventLoop
            )
            loopIndex[ObjectIdentifier(eventLoop)] = loops.count
            loops.append(Loop(index: loops.count, hub: hub))
        }
        self.loops = loops
        self.loopIndex = loopIndex
        self.busLoop = busLoop
        self.bus = bus
        self.logger = logger
        let totals = HubTotals()
        self.totals = totals
        self.core = .makeBoxSendingValue(
            BusHub(
                busLoop: busLoop,
                loops: loops,
                bus: bus,
                totals: totals,
                machine: ChannelSubscriptions(bufferLimit: bufferLimit, bufferBytes: bufferBytes),
                pageSize: pageSize,
                pageBytes: pageBytes,
                writeDelay: writeDelay,
                logger: logger
            ),
            eventLoop: busLoop
        )
    }

    /// The local hub of `eventLoop`; call only on that loop.
    func localHub(on eventLoop: any EventLoop) -> LocalHub? {
        self.loopIndex[ObjectIdentifier(eventLoop)].map { self.loops[$0].hub.value }
    }

    /// A new stream's id, naming its loop.
    func makeStreamID(on eventLoop: any EventLoop) -> StreamID {
        StreamID.next(loop: self.loopIndex[ObjectIdentifier(eventLoop)] ?? 0)
    }

    /// Runs `body` with the hub's state: at once on the bus's loop, otherwise there next.
    private func onBusLoop(_ body: @escaping @Sendable (BusHub) -> Void) {
        let core = self.core
        if core.eventLoop.inEventLoop {
            body(core.value)
        } else {
            core.eventLoop.execute { body(core.value) }
        }
    }

    /// Reads the hub's state on its loop, from anywhere.
    private func read<Value: Sendable>(_ body: @escaping @Sendable (BusHub) -> Value) async throws -> Value {
        let core = self.core
        if core.eventLoop.inEventLoop { return body(core.value) }
        return try await core.eventLoop.submit { body(core.value) }.get()
    }

    // MARK: Streams

    /// Adds a stream (on its loop). It is attached, on its loop, once the node is
    /// subscribed to every one of its channels, or failed when Redis does not confirm one.
    func register(_ stream: SSEStreamHandler) {
        self.localHub(on: stream.eventLoop)?.add(stream)
        let (id, channels, client) = (stream.id, stream.channels, ChannelName.client(stream.clientID))
        self.onBusLoop { $0.join(id, channels: channels, client: client) }
    }

    /// Removes a stream (on its loop): at once from its loop, then from the node.
    func unregister(_ stream: SSEStreamHandler) {
        self.localHub(on: stream.eventLoop)?.remove(stream)
        let (id, channels, client) = (stream.id, stream.channels, ChannelName.client(stream.clientID))
        self.onBusLoop { $0.leave(id, channels: channels, client: client) }
    }

    /// Returns once the node has no streams (at once when it has none).
    func waitUntilEmpty() async throws {
        try await self.totals.waitUntilEmpty()
    }

    /// Every count, channels included (read on the hub's loop).
    func snapshot() async throws -> Counts {
        try await self.read { $0.counts() }
    }

    func connections(on channel: String) async throws -> Int {
        try await self.read { $0.machine.streams(on: channel) }
    }

    /// The counts, with the channels whose stream count changed since the last call (0 for
    /// a channel without streams now), or with every channel (`all`).
    ///
    /// The registry writes only what changed: with 16,700 streams a node has as many
    /// `client:<id>` channels, and rewriting all of them every second cost more than
    /// the streams themselves.
    func countChanges(all: Bool) async throws -> (counts: Counts, changed: [(channel: String, streams: Int)]) {
        try await self.read { $0.countChanges(all: all) }
    }

    // MARK: The bus

    /// An event from the bus. On the bus's loop (the subscriber reads there) it is taken
    /// at once, and everything one loop turn brings goes out together.
    func receive(_ event: BusEvent) {
        self.onBusLoop { $0.received(event) }
    }

    /// The bus's subscription was lost and came back: every channel catches up, or only
    /// `channels` when those alone were subscribed again elsewhere (a moved slot, a shard's
    /// subscriber that came back).
    func reconnected(_ channels: [String]? = nil) {
        self.logger.info("hub.backfill.started", metadata: ["channels": "\(channels.map { "\($0.count)" } ?? "all")"])
        self.onBusLoop { $0.reconnected(channels) }
    }

    /// The subscriber is ready for the first time: channels whose SUBSCRIBE failed while
    /// it was connecting are confirmed now.
    func subscriberReady() {
        self.onBusLoop { $0.subscriberReady() }
    }

    /// Starts failing channels that stay pending past `timeout` (checked every `timeout`,
    /// so one fails after one to two of them), on the bus's loop.
    func startPendingCheck(timeout: TimeAmount = .seconds(10)) {
        self.onBusLoop { $0.startPendingCheck(timeout: timeout) }
    }

    func stopPendingCheck() {
        self.onBusLoop { $0.stopPendingCheck() }
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

    /// A disconnect request: every stream of its channel on every loop gets `__disconnect`
    /// and is closed once that is written. Answers how many were closed.
    ///
    /// The request goes the way the channel's events go (the bus's loop, then each loop's
    /// batch), so the events published before it reach the streams before it does. A loop
    /// that has not answered within five seconds (it is shutting down) counts none.
    func disconnect(_ request: DisconnectRequest) async -> Int {
        let tally = self.stage(request)
        let timeout = self.busLoop.scheduleTask(in: .seconds(5)) { tally.finish() }
        defer { timeout.cancel() }
        return await tally.total()
    }

    /// Ends the one stream that holds `request`'s lease, if it is on this node, the way
    /// ``disconnect(_:)`` ends a channel's streams; nobody waits for the count.
    func endStream(_ request: DisconnectRequest) {
        _ = self.stage(request)
    }

    /// Puts `request` on the bus loop, behind the events staged before it; every loop adds
    /// what it ended to the tally.
    private func stage(_ request: DisconnectRequest) -> DisconnectTally {
        let frame = ControlFrame.disconnect(DisconnectEvent(reason: request.reason, reconnect: request.reconnect))
        let tally = DisconnectTally(loops: self.loops.count)
        let channel = request.channel
        let lease = request.lease
        self.onBusLoop { $0.disconnect(channel, lease: lease, frame: frame, tally: tally) }
        return tally
    }

    /// Runs `body` with every loop's hub, on its loop.
    private func forEachLocalHub(_ body: @escaping @Sendable (LocalHub) -> Void) {
        for loop in self.loops {
            let hub = loop.hub
            hub.eventLoop.execute { body(hub.value) }
        }
    }
}

/// The totals of the node's streams, written by the hub on its loop after every change and
/// read from anywhere (metrics, readiness, the drain), with the drain's wait for none.
final class HubTotals: Sendable {
    struct Values: Sendable {
        var connections = 0
        var clients = 0
        var channels = 0
    }

    private struct State {
        var values = Values()
        var emptied: [AsyncSignal<Void>] = []
    }

    private let state = Mutex(State())

    var values: Values { self.state.withLock { $0.values } }

    var connections: Int { self.values.connections }

    func update(_ values: Values) {
        let emptied = self.state.withLock { state in
            state.values = values
            guard values.connections == 0 else { return [AsyncSignal<Void>]() }
            defer { state.emptied = [] }
            return state.emptied
        }
        for signal in emptied { signal.succeed(()) }
    }

    /// Returns once there are no streams (at once when there are none).
    func waitUntilEmpty() async throws {
        let signal = AsyncSignal<Void>()
        let empty = self.state.withLock { state in
            if state.values.connections == 0 { return true }
            state.emptied.append(signal)
            return false
        }
        if empty { return }
        try await signal.wait()
    }
}

/// How many streams a disconnect ended, added up as each loop answers.
final class DisconnectTally: Sendable {
    private struct State {
        var waiting: Int
        var closed = 0
    }

    private let state: Mutex<State>
    private let done = AsyncSignal<Int>()

    init(loops: Int) {
        self.state = Mutex(State(waiting: loops))
        if loops == 0 { self.done.succeed(0) }
    }

    /// One loop ended `closed` streams.
    func add(_ closed: Int) {
        let total = self.state.withLock { state -> Int? in
            state.closed += closed
            state.waiting -= 1
            return state.waiting == 0 ? state.closed : nil
        }
        if let total { self.done.succeed(total) }
    }

    /// Stops waiting for the loops that have not answered.
    func finish() {
        self.done.succeed(self.state.withLock { $0.closed })
    }

    /// The streams ended, once every loop answered (or ``finish()`` was called).
    func total() async -> Int {
        (try? await self.done.wait()) ?? self.state.withLock { $0.closed }
    }
}
