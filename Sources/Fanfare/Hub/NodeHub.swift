internal import Logging
internal import NIOCore
import Synchronization

/// The node's streams across all its event loops, and their link to the bus.
///
/// Each loop has its own ``LocalHub``. The bus hands every event (channel + encoded frame)
/// to ``receive(channel:frame:)`` from any thread; frames are queued per loop and a
/// loop drains its queue in one task, so a burst becomes one batch and one flush per
/// stream. Channels are reference counted across the node: the bus subscribes when the
/// first local stream joins a channel and unsubscribes when the last one leaves.
final class NodeHub: Sendable {
    private struct Inbox {
        var frames: [(channel: String, frame: ByteBuffer)] = []
    }

    private final class Loop: Sendable {
        let hub: NIOLoopBoundBox<LocalHub>
        let inbox = Mutex(Inbox())

        init(hub: NIOLoopBoundBox<LocalHub>) {
            self.hub = hub
        }
    }

    struct Counts {
        /// Local streams per channel (including `client:<id>`).
        var channels: [String: Int] = [:]
        var connections = 0
        var clients = 0
        /// Bumped on every change, so the registry rewrites counts only when needed.
        var version = 0
    }

    /// Signalled when the last stream is gone (a drain waits for it).
    private let emptied = Mutex<[AsyncSignal<Void>]>([])

    private let loops: [ObjectIdentifier: Loop]
    private let loopList: [Loop]
    /// Events from the bus are staged here first and handed to the loops in one batch per
    /// staging task, so everything that arrived in one socket read travels together.
    private let staging = Mutex(Inbox())
    private let stagingLoop: any EventLoop
    /// The node's place in the bus's events, for backfill (see `NodeHub+Backfill.swift`).
    let backfill = Mutex(Backfill())

    private let counts = Mutex(Counts())
    let bus: any EventBus
    private let logger: Logger

    init(
        group: any EventLoopGroup,
        stagingLoop: any EventLoop,
        bus: any EventBus,
        metrics: NodeMetrics? = nil,
        logger: Logger
    ) {
        self.stagingLoop = stagingLoop
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
        self.logger = logger
    }

    /// The local hub of `eventLoop`; call only on that loop.
    func localHub(on eventLoop: any EventLoop) -> LocalHub? {
        self.loops[ObjectIdentifier(eventLoop)]?.hub.value
    }

    func startHeartbeats(every interval: TimeAmount, frame: ByteBuffer) {
        for loop in self.loopList {
            let hub = loop.hub
            hub.eventLoop.execute { hub.value.startHeartbeat(every: interval, frame: frame) }
        }
    }

    /// Drain: tells every stream when to come back (a random `retry:` up to `jitter`
    /// milliseconds, so clients don't all return at once) and closes it once written.
    func closeAllStreams(retryJitterMilliseconds jitter: Int) {
        self.forEachStream { hub in
            for stream in hub.allStreams {
                let frame = ControlFrame.close(.draining, retryMilliseconds: Int.random(in: 0...max(0, jitter)))
                let context = stream.context
                context.writeAndFlush(NIOAny(frame)).assumeIsolated().whenComplete { _ in
                    context.close(promise: nil)
                }
            }
        }
    }

    func stopHeartbeats() {
        for loop in self.loopList {
            let hub = loop.hub
            hub.eventLoop.execute { hub.value.stop() }
        }
    }

    /// Adds a stream (on its loop). The future succeeds once the bus delivers every one of
    /// its channels.
    func register(_ stream: SSEStream) -> EventLoopFuture<Void> {
        let eventLoop = stream.context.eventLoop
        self.localHub(on: eventLoop)?.add(stream)
        let newChannels = self.counts.withLock { counts in
            var new: [String] = []
            for channel in stream.channels {
                counts.channels[channel, default: 0] += 1
                if counts.channels[channel] == 1 { new.append(channel) }
            }
            if counts.channels[ChannelName.client(stream.clientID)] == 1 { counts.clients += 1 }
            counts.connections += 1
            counts.version += 1
            return new
        }
        guard !newChannels.isEmpty else { return eventLoop.makeSucceededVoidFuture() }
        return self.bus.subscribe(newChannels).hop(to: eventLoop)
    }

    /// Removes a stream (on its loop) everywhere at once.
    func unregister(_ stream: SSEStream) {
        self.localHub(on: stream.context.eventLoop)?.remove(stream)
        let (goneChannels, isEmpty) = self.counts.withLock { counts in
            var gone: [String] = []
            for channel in stream.channels {
                let left = (counts.channels[channel] ?? 1) - 1
                counts.channels[channel] = left > 0 ? left : nil
                if left <= 0 { gone.append(channel) }
            }
            if counts.channels[ChannelName.client(stream.clientID)] == nil { counts.clients -= 1 }
            counts.connections -= 1
            counts.version += 1
            return (gone, counts.connections == 0)
        }
        if !goneChannels.isEmpty { self.bus.unsubscribe(goneChannels) }
        if isEmpty {
            let waiters = self.emptied.withLock { waiters in
                defer { waiters = [] }
                return waiters
            }
            for signal in waiters { signal.succeed(()) }
        }
    }

    /// Returns once the node has no streams (at once when it has none).
    func waitUntilEmpty() async throws {
        let signal = AsyncSignal<Void>()
        // Registered under the counts' lock, so the last unregister cannot slip between
        // the check and the registration.
        let empty = self.counts.withLock { counts in
            if counts.connections == 0 { return true }
            self.emptied.withLock { $0.append(signal) }
            return false
        }
        if empty { return }
        try await signal.wait()
    }

    /// Queues one event for every loop. Events are staged on the staging loop (the bus's
    /// loop, so a whole socket read is staged before the task runs), then each loop gets
    /// the batch and drains its queue in one task.
    func receive(channel: String, frame: ByteBuffer) {
        let id = EventID(frame: frame)
        let pass = self.backfill.withLock { backfill -> Bool in
            if backfill.buffered != nil {
                backfill.buffered?.append((channel, frame))
                return false
            }
            guard let id else { return true }
            if let last = backfill.lastID, id <= last { return false }  // already delivered
            backfill.lastID = id
            return true
        }
        if pass { self.stage(channel: channel, frame: frame) }
    }

    /// Queues one event for delivery on every loop, after everything queued before it.
    func stage(channel: String, frame: ByteBuffer) {
        let first = self.staging.withLock { staging in
            staging.frames.append((channel, frame))
            return staging.frames.count == 1
        }
        guard first else { return }
        self.stagingLoop.execute {
            let batch = self.staging.withLock { staging in
                let frames = staging.frames
                staging.frames.removeAll(keepingCapacity: true)
                return frames
            }
            self.dispatch(batch)
        }
    }

    private func dispatch(_ batch: [(channel: String, frame: ByteBuffer)]) {
        for loop in self.loopList {
            let wasEmpty = loop.inbox.withLock { inbox in
                inbox.frames.append(contentsOf: batch)
                return inbox.frames.count == batch.count
            }
            guard wasEmpty else { continue }
            loop.hub.eventLoop.execute {
                let frames = loop.inbox.withLock { inbox in
                    let frames = inbox.frames
                    inbox.frames.removeAll(keepingCapacity: true)
                    return frames
                }
                loop.hub.value.deliver(frames)
            }
        }
    }

    func snapshot() -> Counts {
        self.counts.withLock { $0 }
    }

    func connections(on channel: String) -> Int {
        self.counts.withLock { $0.channels[channel] ?? 0 }
    }

    /// Every stream of every loop, gathered on their loops.
    func forEachStream(_ body: @escaping @Sendable (LocalHub) -> Void) {
        for loop in self.loopList {
            let hub = loop.hub
            hub.eventLoop.execute { body(hub.value) }
        }
    }
}
