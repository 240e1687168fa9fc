/// The node's channels: which it is subscribed to in Redis and for how many of its
/// streams, where it is in each, and which streams wait for which. A state machine: its
/// methods return actions, ``NodeHub`` performs them.
///
/// A channel is *pending* from the SUBSCRIBE until Redis acknowledged it and the channel's
/// newest position was read; every stream that joins a pending channel waits for that same
/// moment, and a stream is attached only once all its channels are ready, with the node's
/// position in each. Events are handed to the loops in order behind it, so a stream gets
/// exactly the events after the positions it was attached with. A subscribe and an
/// unsubscribe of one channel are returned in the order they were decided; the hub sends
/// them in that order. After the subscription dropped, or when an event shows that one
/// before it never arrived, the channel catches up from history (``ChannelCatchUp``).
struct ChannelSubscriptions: Sendable {

    private enum Phase: Sendable {
        /// SUBSCRIBE sent in this generation; events that arrive already are kept.
        case subscribing(early: [BusEvent])
        /// Acknowledged; the newest position is being read. `again` when the subscription
        /// dropped meanwhile.
        case readingHead(early: [BusEvent], again: Bool)
        case ready(ChannelCatchUp)
        /// The subscription or the head read failed; the next stream subscribes again.
        case failed
    }

    private struct Entry: Sendable {
        var phase: Phase
        var generation: Int
        var streams: Int32 = 0
        /// The loops that had a stream on the channel since it was subscribed (a bit per
        /// loop index): its events go to those loops only.
        var loops: UInt64 = 0
        /// Streams waiting for this channel to be ready.
        var waiting: [StreamID] = []
    }

    private struct Waiter: Sendable {
        var channels: [String]
        var pending: Int
    }

    /// What the hub does.
    enum Action: Sendable {
        case subscribe([String], generation: Int)
        case unsubscribe([String])
        case readHead(String, generation: Int)
        case readHistory(String, after: StreamPosition, generation: Int)
        /// Hand these events to the loops, in order.
        case deliver([BusEvent])
        /// Attach the stream with the node's position in each of its channels (in its
        /// channel order), behind every event handed over so far.
        case attach(StreamID, [StreamPosition])
        /// The stream cannot be served (Redis did not confirm a subscription).
        case fail(StreamID)
        /// The node could not fill a gap in `channel` after `from`: its streams there jump
        /// to `position`.
        case reset(String, HistoryPage.Status, position: StreamPosition, from: StreamPosition)
    }

    private var entries: [String: Entry] = [:]
    private var waiters: [StreamID: Waiter] = [:]
    private var nextGeneration = 0
    let bufferLimit: Int
    let bufferBytes: Int

    init(bufferLimit: Int, bufferBytes: Int = 1 << 20) {
        self.bufferLimit = bufferLimit
        self.bufferBytes = bufferBytes
    }

    /// The node's position in `channel` when it is ready.
    func position(of channel: String) -> StreamPosition? {
        guard case .ready(let catchUp) = self.entries[channel]?.phase else { return nil }
        return catchUp.position
    }

    /// Whether the head of `channel` is still awaited in `generation` (a failed read is
    /// retried only then).
    func awaitsHead(_ channel: String, generation: Int) -> Bool {
        guard let entry = self.entries[channel], entry.generation == generation, case .readingHead = entry.phase else {
            return false
        }
        return true
    }

    /// Channels the node is subscribed to (or subscribing), with their stream counts.
    var streamCounts: [String: Int] { self.entries.mapValues { Int($0.streams) } }

    /// The most live events any one channel keeps while it is pending or catches up.
    var largestBuffer: Int {
        self.entries.values.map { entry in
            switch entry.phase {
            case .subscribing(let early), .readingHead(let early, _): early.count
            case .ready(let catchUp): catchUp.bufferedCount
            case .failed: 0
            }
        }.max() ?? 0
    }

    /// The loops to hand `channel`'s events to (a bit per loop index; none when the node
    /// has no stream on it).
    func loops(of channel: String) -> UInt64 {
        self.entries[channel]?.loops ?? 0
    }

    /// How many channels the node is subscribed to (or subscribing).
    var channelCount: Int { self.entries.count }

    /// How many of the node's streams are on `channel`.
    func streams(on channel: String) -> Int {
        Int(self.entries[channel]?.streams ?? 0)
    }

    // MARK: Streams

    /// A stream on `channels` (distinct names) arrived.
    mutating func join(_ stream: StreamID, channels: [String]) -> [Action] {
        var actions: [Action] = []
        var subscribe: [String] = []
        var pending = 0
        // One generation for the channels this stream subscribes: one SUBSCRIBE answers them.
        let generation = self.nextGeneration + 1
        for channel in channels {
            var entry = self.entries[channel] ?? Entry(phase: .failed, generation: generation)
            if case .failed = entry.phase {
                entry.generation = generation
                entry.phase = .subscribing(early: [])
                subscribe.append(channel)
            }
            entry.streams += 1
            entry.loops |= stream.loopBit
            switch entry.phase {
            case .subscribing, .readingHead:
                entry.waiting.append(stream)
                pending += 1
            case .ready, .failed:
                break
            }
            self.entries[channel] = entry
        }
        if !subscribe.isEmpty {
            self.nextGeneration = generation
            actions.append(.subscribe(subscribe, generation: generation))
        }
        if pending == 0 {
            actions.append(.attach(stream, channels.map { self.position(of: $0) ?? .zero }))
        } else {
            self.waiters[stream] = Waiter(channels: channels, pending: pending)
        }
        return actions
    }

    /// A stream on `channels` left (closed, attached or not).
    mutating func leave(_ stream: StreamID, channels: [String]) -> [Action] {
        self.waiters[stream] = nil
        var unsubscribe: [String] = []
        for channel in channels {
            guard var entry = self.entries[channel] else { continue }
            entry.streams -= 1
            entry.waiting.removeAll { $0 == stream }
            if entry.streams <= 0 {
                self.entries[channel] = nil
                unsubscribe.append(channel)
            } else {
                self.entries[channel] = entry
            }
        }
        return unsubscribe.isEmpty ? [] : [.unsubscribe(unsubscribe)]
    }

    // MARK: Redis

    /// Redis acknowledged the SUBSCRIBE of `channels` sent in `generation`.
    mutating func subscribed(_ channels: [String], generation: Int) -> [Action] {
        var actions: [Action] = []
        for channel in channels {
            guard var entry = self.entries[channel], entry.generation == generation,
                case .subscribing(let early) = entry.phase
            else { continue }
            entry.phase = .readingHead(early: early, again: false)
            self.entries[channel] = entry
            actions.append(.readHead(channel, generation: generation))
        }
        return actions
    }

    /// The SUBSCRIBE (or the head read) of `channels` failed: their waiting streams fail.
    mutating func subscribeFailed(_ channels: [String], generation: Int) -> [Action] {
        var actions: [Action] = []
        for channel in channels {
            guard var entry = self.entries[channel], entry.generation == generation else { continue }
            switch entry.phase {
            case .subscribing, .readingHead: break
            case .ready, .failed: continue
            }
            entry.phase = .failed
            let waiting = entry.waiting
            entry.waiting = []
            self.entries[channel] = entry
            for stream in waiting where self.waiters.removeValue(forKey: stream) != nil {
                actions.append(.fail(stream))
            }
        }
        return actions
    }

    /// The newest position of `channel` was read: the channel is ready.
    mutating func headRead(_ channel: String, head: StreamPosition, generation: Int) -> [Action] {
        guard var entry = self.entries[channel], entry.generation == generation,
            case .readingHead(let early, let again) = entry.phase
        else { return [] }
        var catchUp = ChannelCatchUp(
            position: head,
            isLive: true,
            bufferLimit: self.bufferLimit,
            bufferBytes: self.bufferBytes
        )
        var actions = Actions()
        // Events that came while the head was read: those after it are the channel's first.
        for event in early {
            actions.add(catchUp.live(event), event, channel: channel, generation: generation)
        }
        if again {
            actions.add(catchUp.restart(), channel: channel, generation: generation)
        }
        entry.phase = .ready(catchUp)
        let waiting = entry.waiting
        entry.waiting = []
        self.entries[channel] = entry
        for stream in waiting {
            guard var waiter = self.waiters[stream] else { continue }
            waiter.pending -= 1
            if waiter.pending > 0 {
                self.waiters[stream] = waiter
                continue
            }
            self.waiters[stream] = nil
            actions.append(.attach(stream, waiter.channels.map { self.position(of: $0) ?? .zero }))
        }
        return actions.list
    }

    /// An event arrived from Redis.
    mutating func received(_ event: BusEvent) -> [Action] {
        guard var entry = self.entries[event.channel] else { return [] }
        switch entry.phase {
        case .subscribing(var early):
            Self.keep(event, in: &early, limit: self.bufferLimit)
            entry.phase = .subscribing(early: early)
        case .readingHead(var early, let again):
            Self.keep(event, in: &early, limit: self.bufferLimit)
            entry.phase = .readingHead(early: early, again: again)
        case .ready(var catchUp):
            let outcome = catchUp.live(event)
            entry.phase = .ready(catchUp)
            self.entries[event.channel] = entry
            switch outcome {
            case .deliver: return [.deliver([event])]
            case .drop, .buffered: return []
            case .read(let after): return [.readHistory(event.channel, after: after, generation: entry.generation)]
            }
        case .failed:
            return []
        }
        self.entries[event.channel] = entry
        return []
    }

    /// The subscriber became ready for the first time: every SUBSCRIBE sent so far is
    /// confirmed, including those that failed only because it was still connecting.
    mutating func subscriberReady() -> [Action] {
        var actions = Actions()
        for channel in self.entries.keys.sorted() {
            guard var entry = self.entries[channel], case .subscribing(let early) = entry.phase else { continue }
            entry.phase = .readingHead(early: early, again: false)
            actions.append(.readHead(channel, generation: entry.generation))
            self.entries[channel] = entry
        }
        return actions.list
    }

    /// The newest generation handed out: channels pending since it or before are stale at
    /// the next check (``failPending(since:)``).
    var generation: Int { self.nextGeneration }

    /// Channels still pending (unconfirmed, or their head unread) that were subscribed in
    /// `generation` or before fail: their streams are closed with a `retry:` and come back,
    /// and the next stream subscribes them again. A pending channel always has a way out,
    /// even when the confirmation it waits for never comes.
    mutating func failPending(since generation: Int) -> [Action] {
        var stale: [(String, Int)] = []
        for channel in self.entries.keys.sorted() {
            guard let entry = self.entries[channel], entry.generation <= generation else { continue }
            switch entry.phase {
            case .subscribing, .readingHead: stale.append((channel, entry.generation))
            case .ready, .failed: break
            }
        }
        var actions: [Action] = []
        for (channel, generation) in stale {
            actions += self.subscribeFailed([channel], generation: generation)
        }
        return actions
    }

    /// The subscription dropped and came back: every channel (or those of `only`) may have
    /// missed events.
    mutating func reconnected(only: Set<String>? = nil) -> [Action] {
        var actions = Actions()
        // In the channels' order, so that the same events make the same actions.
        for channel in (only.map(Array.init) ?? Array(self.entries.keys)).sorted() {
            guard var entry = self.entries[channel] else { continue }
            switch entry.phase {
            case .subscribing(let early):
                // The reconnect subscribed it again: it is acknowledged now.
                entry.phase = .readingHead(early: early, again: false)
                actions.append(.readHead(channel, generation: entry.generation))
            case .readingHead(let early, _):
                entry.phase = .readingHead(early: early, again: true)
            case .ready(var catchUp):
                actions.add(catchUp.restart(), channel: channel, generation: entry.generation)
                entry.phase = .ready(catchUp)
            case .failed:
                break
            }
            self.entries[channel] = entry
        }
        return actions.list
    }

    /// A history read of `channel` answered.
    mutating func historyRead(_ channel: String, page: HistoryPage, generation: Int) -> [Action] {
        guard var entry = self.entries[channel], entry.generation == generation, case .ready(var catchUp) = entry.phase
        else { return [] }
        var actions = Actions()
        actions.add(catchUp.read(page), channel: channel, generation: generation)
        entry.phase = .ready(catchUp)
        self.entries[channel] = entry
        return actions.list
    }

    /// A history read of `channel` failed: the hub retries it after a pause.
    func historyReadFailed(_ channel: String, after: StreamPosition, generation: Int) -> [Action] {
        guard let entry = self.entries[channel], entry.generation == generation, case .ready = entry.phase else {
            return []
        }
        return [.readHistory(channel, after: after, generation: generation)]
    }

    // MARK: Helpers

    private static func keep(_ event: BusEvent, in early: inout [BusEvent], limit: Int) {
        if early.count >= limit { early.removeFirst() }
        early.append(event)
    }

    /// Actions in the order they must happen, adjacent deliveries joined into one.
    private struct Actions {
        var list: [Action] = []

        mutating func append(_ action: Action) {
            if case .deliver(let more) = action, case .deliver(let events)? = self.list.last {
                self.list[self.list.count - 1] = .deliver(events + more)
            } else {
                self.list.append(action)
            }
        }

        mutating func add(
            _ outcome: ChannelCatchUp.LiveOutcome,
            _ event: BusEvent,
            channel: String,
            generation: Int
        ) {
            switch outcome {
            case .deliver: self.append(.deliver([event]))
            case .drop, .buffered: break
            case .read(let after): self.append(.readHistory(channel, after: after, generation: generation))
            }
        }

        mutating func add(_ step: ChannelCatchUp.Step, channel: String, generation: Int) {
            if let reset = step.reset {
                self.append(.reset(channel, reset.status, position: reset.position, from: reset.from))
            }
            if !step.deliver.isEmpty { self.append(.deliver(step.deliver)) }
            if let after = step.read {
                self.append(.readHistory(channel, after: after, generation: generation))
            }
        }
    }
}
