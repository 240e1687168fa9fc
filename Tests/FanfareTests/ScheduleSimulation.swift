import FanfareAPI
import Foundation
import NIOCore

@testable import Fanfare

/// A whole node without I/O, driven through a random schedule: the node's
/// ``ChannelSubscriptions`` and its streams' ``StreamStateMachine``s, a simulated Redis
/// (per-channel histories with trimming and expiry, pub/sub over one subscriber connection
/// that drops and comes back), and the loops that apply the node's items to the streams.
/// Every answer arrives late, in an order the seed picks: acknowledgements, head reads,
/// history reads of the node and of each stream (a stream whose reads wait is a reader
/// that stalls). After every step it checks what each stream wrote.
///
/// The same seed gives the same schedule, so a failure replays exactly.
struct ScheduleSimulation {
    struct Failure: Error, CustomStringConvertible {
        var seed: UInt64
        var step: Int
        var message: String
        var description: String { "seed \(seed), step \(step): \(message)" }
    }

    /// One channel's history in the simulated Redis.
    struct History {
        var events: [BusEvent] = []
        /// The newest position ever given (Redis keeps it when trimming empties the stream).
        var last = StreamPosition.zero
        var exists = false
    }

    /// What travels on the subscriber's connection, in order.
    enum Push {
        case message(BusEvent)
        case acknowledged([String], generation: Int)
    }

    final class Stream {
        let id = StreamID.next()
        let channels: [String]
        var machine: StreamStateMachine
        var attached = false
        /// What the client has seen per channel: its cursor's position.
        var seen: [StreamPosition] = []
        /// Every position written per channel: none may come twice, resets or not.
        var delivered: [Set<StreamPosition>] = []
        var connected = false
        /// A history read asked for, once what came before it was written.
        var read: (index: Int, after: StreamPosition)?

        init(channels: [String], resume: StreamStateMachine.Resume, bufferLimit: Int) {
            self.channels = channels
            self.machine = StreamStateMachine(
                channels: channels,
                resume: resume,
                replayCap: 1_000_000,
                bufferLimit: bufferLimit,
                bufferBytes: 1 << 20
            )
        }
    }

    let seed: UInt64
    var random: SplitMix
    let channels = ["a", "b", "c"]
    let bufferLimit: Int
    let pageSize: Int
    let historyLimit: Int
    var node: ChannelSubscriptions
    var histories: [String: History] = [:]
    var clock: UInt64 = 1
    /// The simulated Redis: channels the node's connection is subscribed to.
    var subscribed = Set<String>()
    var connected: Bool
    var everConnected: Bool
    var pushes: [Push] = []
    var heads: [(String, Int)] = []
    var nodeReads: [(String, StreamPosition, Int)] = []
    var items: [NodeHub.Item] = []
    /// Open streams, in the order they opened (a dictionary's order would change with the
    /// process's hash seed, and the schedule with it).
    var streams: [Stream] = []
    var pendingMark = 0
    /// Cursors of streams gone, for others to resume with (as from another node).
    var cursors: [[UInt32: StreamPosition]] = []
    var step = 0
    var checks = 0
    /// What happened last, for a failure's message (with FANFARE_SCHEDULE_TRACE set).
    var trace: [String] = []
    let tracing = ProcessInfo.processInfo.environment["FANFARE_SCHEDULE_TRACE"] != nil

    mutating func note(_ text: @autoclosure () -> String) {
        guard self.tracing else { return }
        self.trace.append("\(self.step): \(text())")
        if self.trace.count > 400 { self.trace.removeFirst() }
    }

    init(seed: UInt64) {
        self.seed = seed
        self.random = SplitMix(seed: seed)
        self.bufferLimit = [2, 4, 16][Int(seed % 3)]
        self.pageSize = [1, 3, 50][Int((seed / 3) % 3)]
        self.historyLimit = [4, 12, 1_000][Int((seed / 9) % 3)]
        self.node = ChannelSubscriptions(bufferLimit: self.bufferLimit)
        // Some schedules start with a subscriber that is not connected yet.
        self.connected = seed % 5 != 0
        self.everConnected = self.connected
    }

    /// Runs `steps` random steps, then lets everything settle and checks that every
    /// stream caught up with every channel.
    mutating func run(steps: Int) throws {
        for _ in 0..<steps {
            self.step += 1
            try self.randomStep()
            try self.checkBounds()
        }
        try self.settle()
        for channel in self.channels { try self.publish(channel) }
        try self.settle()
        try self.checkCaughtUp()
    }

    // MARK: Steps

    mutating func randomStep() throws {
        let roll = Int.random(in: 0..<100, using: &self.random)
        self.note("roll \(roll)")
        switch roll {
        case 0..<22: try self.publish(self.pick(self.channels))
        case 22..<40: try self.deliverPush()
        case 40..<52: try self.applyItem()
        case 52..<60: try self.answerHead()
        case 60..<68: try self.answerNodeRead()
        case 68..<78: try self.answerStreamRead()
        case 78..<84: try self.openStream()
        case 84..<87: try self.closeStream()
        case 87..<90: self.trim(self.pick(self.channels))
        case 90..<92: self.expire(self.pick(self.channels))
        case 92..<95: self.drop()
        case 95..<98: try self.reconnect()
        default: try self.checkPending()
        }
    }

    mutating func pick<T>(_ values: [T]) -> T {
        values[Int.random(in: 0..<values.count, using: &self.random)]
    }

    mutating func publish(_ channel: String) throws {
        self.note("publish \(channel)")
        var history = self.histories[channel] ?? History()
        self.clock += 1
        let predecessor = history.exists ? history.last : .zero
        let event = BusEvent(
            channel: channel,
            position: StreamPosition(milliseconds: self.clock, sequence: 0),
            predecessor: predecessor,
            body: ByteBuffer(string: "data: \(self.clock)\n\n")
        )
        history.events.append(event)
        history.last = event.position
        history.exists = true
        if history.events.count > self.historyLimit { history.events.removeFirst() }
        self.histories[channel] = history
        if self.connected, self.subscribed.contains(channel) { self.pushes.append(.message(event)) }
    }

    mutating func trim(_ channel: String) {
        guard var history = self.histories[channel], !history.events.isEmpty else { return }
        self.note("trim \(channel)")
        history.events.removeFirst(Int.random(in: 1...history.events.count, using: &self.random))
        self.histories[channel] = history
    }

    /// The channel's history expires (or Redis lost it): it starts over from nothing.
    mutating func expire(_ channel: String) {
        self.note("expire \(channel)")
        self.histories[channel] = History()
    }

    mutating func drop() {
        guard self.connected else { return }
        self.note("drop")
        self.connected = false
        // What was on its way is lost; unconfirmed subscribes wait for the reconnect.
        self.pushes.removeAll()
    }

    mutating func reconnect() throws {
        guard !self.connected else { return }
        self.connected = true
        if self.everConnected {
            try self.perform(self.node.reconnected())
        } else {
            self.everConnected = true
            try self.perform(self.node.subscriberReady())
        }
    }

    mutating func checkPending() throws {
        try self.perform(self.node.failPending(since: self.pendingMark))
        self.pendingMark = self.node.generation
    }

    mutating func deliverPush() throws {
        guard !self.pushes.isEmpty else { return }
        switch self.pushes.removeFirst() {
        case .message(let event): try self.perform(self.node.received(event))
        case .acknowledged(let channels, let generation):
            try self.perform(self.node.subscribed(channels, generation: generation))
        }
    }

    mutating func answerHead() throws {
        guard !self.heads.isEmpty else { return }
        let (channel, generation) = self.heads.remove(at: Int.random(in: 0..<self.heads.count, using: &self.random))
        try self.perform(self.node.headRead(channel, head: self.head(channel), generation: generation))
    }

    mutating func answerNodeRead() throws {
        guard !self.nodeReads.isEmpty else { return }
        let index = Int.random(in: 0..<self.nodeReads.count, using: &self.random)
        let (channel, after, generation) = self.nodeReads.remove(at: index)
        if Int.random(in: 0..<8, using: &self.random) == 0 {
            // Redis did not answer: the hub asks again after a pause.
            try self.perform(self.node.historyReadFailed(channel, after: after, generation: generation))
            return
        }
        let page = self.page(channel, after: after)
        self.note(
            "node read \(channel) after \(after): \(page.status) head \(page.head) \(page.events.map(\.position)) preds \(page.events.map(\.predecessor))"
        )
        try self.perform(self.node.historyRead(channel, page: page, generation: generation))
    }

    mutating func answerStreamRead() throws {
        let waiting = self.streams.filter { $0.read != nil }
        guard !waiting.isEmpty else { return }
        let stream = self.pick(waiting)
        guard let read = stream.read else { return }
        stream.read = nil
        let page = self.page(stream.channels[read.index], after: read.after)
        self.note(
            "\(stream.id) read \(stream.channels[read.index]) after \(read.after): \(page.status) head \(page.head) \(page.events.map(\.position))"
        )
        try self.observe(stream.machine.read(page, index: read.index), stream)
    }

    mutating func openStream() throws {
        var channels = self.channels.filter { _ in Bool.random(using: &self.random) }
        if channels.isEmpty { channels = [self.pick(self.channels)] }
        var resume = StreamStateMachine.Resume.none
        switch Int.random(in: 0..<4, using: &self.random) {
        case 0 where !self.cursors.isEmpty:
            // A client of this node coming back.
            resume = .cursor(self.pick(self.cursors))
        case 1:
            // A client of another node that is up to date (this one may be behind).
            resume = .cursor(Dictionary(uniqueKeysWithValues: channels.map { (Cursor.tag($0), self.head($0)) }))
        case 2:
            // A client of another node somewhere in each channel's history.
            var positions: [UInt32: StreamPosition] = [:]
            for channel in channels {
                let events = self.histories[channel]?.events ?? []
                positions[Cursor.tag(channel)] = events.isEmpty ? self.head(channel) : self.pick(events).position
            }
            resume = .cursor(positions)
        default:
            break
        }
        guard self.streams.count < 12 else { return }
        let stream = Stream(channels: channels, resume: resume, bufferLimit: self.bufferLimit)
        self.streams.append(stream)
        self.note("open \(stream.id) \(channels) \(resume)")
        try self.perform(self.node.join(stream.id, channels: channels))
    }

    mutating func closeStream() throws {
        guard !self.streams.isEmpty else { return }
        let stream = self.pick(self.streams)
        self.note("close \(stream.id)")
        try self.remove(stream.id)
    }

    func stream(_ id: StreamID) -> Stream? {
        self.streams.first { $0.id == id }
    }

    mutating func remove(_ id: StreamID) throws {
        guard let index = self.streams.firstIndex(where: { $0.id == id }) else { return }
        let stream = self.streams.remove(at: index)
        if stream.connected {
            self.cursors.append(
                Dictionary(uniqueKeysWithValues: zip(stream.channels.map(Cursor.tag), stream.seen))
            )
            if self.cursors.count > 16 { self.cursors.removeFirst() }
        }
        try self.perform(self.node.leave(id, channels: stream.channels))
    }

    // MARK: The node's actions and the loops' items

    mutating func perform(_ actions: [ChannelSubscriptions.Action]) throws {
        for action in actions {
            self.note("node: \(action)")
            switch action {
            case .subscribe(let channels, let generation):
                self.subscribed.formUnion(channels)
                // While disconnected the SUBSCRIBE fails as "closed" and waits for the
                // subscriber to come back, which subscribes every name again.
                if self.connected { self.pushes.append(.acknowledged(channels, generation: generation)) }
            case .unsubscribe(let channels):
                self.subscribed.subtract(channels)
            case .readHead(let channel, let generation):
                self.heads.append((channel, generation))
            case .readHistory(let channel, let after, let generation):
                self.nodeReads.append((channel, after, generation))
            case .deliver(let events):
                for event in events { self.items.append(.event(event)) }
            case .attach(let id, let positions):
                self.items.append(.attach(id, positions))
            case .fail(let id):
                self.items.append(.fail(id))
            case .reset(let channel, let status, let position, let from):
                self.items.append(.reset(channel, status, position: position, from: from))
            }
        }
    }

    mutating func applyItem() throws {
        guard !self.items.isEmpty else { return }
        switch self.items.removeFirst() {
        case .event(let event):
            for stream in self.streams where stream.attached {
                guard let index = stream.channels.firstIndex(of: event.channel) else { continue }
                switch stream.machine.live(event, index: index) {
                case .write: try self.saw(event, in: stream, index: index)
                case .end: throw self.failure("an ordinary stream ended")
                case .none: break
                case .read(let index, let after): stream.read = (index, after)
                }
            }
        case .attach(let id, let positions):
            guard let stream = self.stream(id), !stream.attached else { return }
            stream.attached = true
            try self.observe(stream.machine.attached(positions), stream)
        case .fail(let id):
            try self.remove(id)
        case .reset(let channel, let status, let position, let from):
            for stream in self.streams where stream.attached {
                guard let index = stream.channels.firstIndex(of: channel) else { continue }
                try self.observe(
                    stream.machine.nodeReset(index: index, status: status, position: position, from: from),
                    stream
                )
            }
        case .disconnect:
            throw self.failure("the simulation sends no disconnects")
        }
    }
}
