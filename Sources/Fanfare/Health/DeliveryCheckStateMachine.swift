/// The node's proof that it delivers: a probe published through the real publish path
/// every interval, on a channel of the node's own (in a Redis Cluster, one per primary),
/// must come back through the node's own subscriber within the timeout. A state machine:
/// its methods return actions, ``DeliveryCheck`` performs them. Times are milliseconds of
/// any monotonic clock.
///
/// The node is *unproven* until a first probe came back, *delivering* while every probe
/// comes back in time, and *stalled* from the moment one is overdue (or a probe channel's
/// subscription is not confirmed within the timeout) until every probe channel delivers
/// again. Stalled past the grace, the owner is asked to hand the node's streams over (at
/// most once an interval, until it says it did).
struct DeliveryCheckStateMachine: Sendable {
    struct Settings: Sendable {
        /// Between two probes of one channel.
        var interval: Int64
        /// A probe not back after this long is overdue.
        var timeout: Int64
        /// Stalled this long, the node hands its streams over.
        var grace: Int64
    }

    enum Health: Sendable, Equatable {
        case unproven
        case delivering
        case stalled(since: Int64)
    }

    enum Action: Sendable, Equatable {
        case subscribe(String)
        case unsubscribe(String)
        case publish(String, sequence: UInt64)
        /// The node stopped delivering, and why.
        case stalled(reason: String)
        /// It delivers again, after being stalled this long.
        case recovered(stalledFor: Int64)
        /// The first probe came back.
        case proven
        /// Stalled past the grace: hand the streams over to healthy nodes.
        case handOver
    }

    private enum Phase: Sendable {
        /// SUBSCRIBE sent at `since`; `failed` when it did not work (asked again next tick).
        case subscribing(since: Int64, failed: Bool)
        case active
    }

    private struct Probe: Sendable {
        var phase: Phase
        var nextSequence: UInt64 = 1
        var lastPublish: Int64?
        /// Probes sent and not back yet, oldest first (bounded: the oldest are dropped, and
        /// the next one is as overdue).
        var outstanding: [(sequence: UInt64, sentAt: Int64)] = []
        /// When the newest probe that came back was sent.
        var answeredSentAt: Int64?
    }

    static let maximumOutstanding = 64

    let settings: Settings
    private var probes: [String: Probe] = [:]
    private(set) var health = Health.unproven
    private(set) var reason: String?
    /// The streams were handed over in the current stall.
    private(set) var handedOver = false
    private var lastHandOverRequest: Int64?

    init(settings: Settings) {
        self.settings = settings
    }

    /// Every few hundred milliseconds: `channels` are the probe channels the node should
    /// have now. Subscribes new ones, publishes the probes that are due, and judges.
    mutating func tick(now: Int64, channels: [String]) -> [Action] {
        var actions: [Action] = []
        let wanted = Set(channels)
        for channel in self.probes.keys.sorted() where !wanted.contains(channel) {
            self.probes[channel] = nil
            actions.append(.unsubscribe(channel))
        }
        for channel in channels {
            guard var probe = self.probes[channel] else {
                self.probes[channel] = Probe(phase: .subscribing(since: now, failed: false))
                actions.append(.subscribe(channel))
                continue
            }
            switch probe.phase {
            case .subscribing(let since, let failed):
                if failed {
                    probe.phase = .subscribing(since: since, failed: false)
                    actions.append(.subscribe(channel))
                }
            case .active:
                if probe.lastPublish.map({ now - $0 >= self.settings.interval }) ?? true {
                    let sequence = probe.nextSequence
                    probe.nextSequence += 1
                    probe.lastPublish = now
                    if probe.outstanding.count >= Self.maximumOutstanding { probe.outstanding.removeFirst() }
                    probe.outstanding.append((sequence, now))
                    actions.append(.publish(channel, sequence: sequence))
                }
            }
            self.probes[channel] = probe
        }
        self.judge(now: now, into: &actions)
        if case .stalled(let since) = self.health, !self.handedOver, now - since >= self.settings.grace,
            self.lastHandOverRequest.map({ now - $0 >= self.settings.interval }) ?? true
        {
            self.lastHandOverRequest = now
            actions.append(.handOver)
        }
        return actions
    }

    /// Redis confirmed the probe channel's subscription: probes start.
    mutating func subscribed(_ channel: String) {
        guard var probe = self.probes[channel], case .subscribing = probe.phase else { return }
        probe.phase = .active
        self.probes[channel] = probe
    }

    /// The subscription of a probe channel failed; it is asked for again at the next tick
    /// (and the channel is overdue once the timeout passed since the first ask).
    mutating func subscribeFailed(_ channel: String) {
        guard var probe = self.probes[channel], case .subscribing(let since, _) = probe.phase else { return }
        probe.phase = .subscribing(since: since, failed: true)
        self.probes[channel] = probe
    }

    /// Probe `sequence` of `channel` came back (and with it every one before it: a channel's
    /// events arrive in order, so earlier ones that did not were lost).
    mutating func received(_ channel: String, sequence: UInt64, now: Int64) -> [Action] {
        guard var probe = self.probes[channel], case .active = probe.phase else { return [] }
        guard let answered = probe.outstanding.lastIndex(where: { $0.sequence <= sequence }) else { return [] }
        probe.answeredSentAt = probe.outstanding[answered].sentAt
        probe.outstanding.removeFirst(answered + 1)
        self.probes[channel] = probe
        var actions: [Action] = []
        self.judge(now: now, into: &actions, proven: true)
        return actions
    }

    /// The owner handed the streams over (it found a healthy node to send them to).
    mutating func streamsHandedOver() {
        if case .stalled = self.health { self.handedOver = true }
    }

    /// Whether the node may be called ready as far as delivery goes.
    var isDelivering: Bool { self.health == .delivering }

    /// Moves between unproven, delivering and stalled.
    private mutating func judge(now: Int64, into actions: inout [Action], proven: Bool = false) {
        if let overdue = self.overdue(now: now) {
            switch self.health {
            case .stalled:
                self.reason = overdue
            case .unproven, .delivering:
                self.health = .stalled(since: now)
                self.reason = overdue
                self.handedOver = false
                self.lastHandOverRequest = nil
                actions.append(.stalled(reason: overdue))
            }
            return
        }
        switch self.health {
        case .stalled(let since):
            // Every channel is in time again, and a probe of each sent since the stall began
            // came back: it delivers now (not just a late one from before).
            guard self.allAnswered(sentSince: since) else { return }
            self.health = .delivering
            self.reason = nil
            self.handedOver = false
            actions.append(.recovered(stalledFor: now - since))
        case .unproven:
            guard proven, self.allAnswered(sentSince: nil) else { return }
            self.health = .delivering
            actions.append(.proven)
        case .delivering:
            break
        }
    }

    /// Every probe channel is active and a probe of it (sent at `since` or later) came back.
    /// Probes still out do not count against it unless overdue: with a round trip longer
    /// than the interval, one is always out.
    private func allAnswered(sentSince since: Int64?) -> Bool {
        !self.probes.isEmpty
            && self.probes.values.allSatisfy { probe in
                guard case .active = probe.phase, let sentAt = probe.answeredSentAt else { return false }
                return since.map { sentAt >= $0 } ?? true
            }
    }

    /// Why the node is overdue, or `nil` when it is not.
    private func overdue(now: Int64) -> String? {
        for channel in self.probes.keys.sorted() {
            guard let probe = self.probes[channel] else { continue }
            switch probe.phase {
            case .subscribing(let since, _):
                if now - since >= self.settings.timeout {
                    return
                        "the subscription of the probe channel \(channel) was not confirmed within \(self.settings.timeout) ms"
                }
            case .active:
                if let oldest = probe.outstanding.first, now - oldest.sentAt >= self.settings.timeout {
                    return
                        "a probe published on \(channel) did not come back through the subscriber within \(self.settings.timeout) ms"
                }
            }
        }
        return nil
    }
}
