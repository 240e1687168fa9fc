import Testing

@testable import Fanfare

/// The delivery check's decisions, one clock step at a time.
@Suite struct DeliveryCheckStateMachineTests {
    private let probe = "__probe.node-a"

    private func machine() -> DeliveryCheckStateMachine {
        DeliveryCheckStateMachine(settings: .init(interval: 1_000, timeout: 3_000, grace: 5_000))
    }

    /// A machine whose probe channel is subscribed and whose first probe came back at 0.
    private func delivering() -> DeliveryCheckStateMachine {
        var machine = self.machine()
        _ = machine.tick(now: 0, channels: [self.probe])
        machine.subscribed(self.probe)
        _ = machine.tick(now: 0, channels: [self.probe])
        _ = machine.received(self.probe, sequence: 1, now: 1)
        return machine
    }

    @Test func theNodeIsProvenOnceTheFirstProbeComesBack() {
        var machine = self.machine()
        #expect(machine.tick(now: 0, channels: [self.probe]) == [.subscribe(self.probe)])
        #expect(!machine.isDelivering)
        machine.subscribed(self.probe)
        #expect(machine.tick(now: 250, channels: [self.probe]) == [.publish(self.probe, sequence: 1)])
        // Not due again within the interval.
        #expect(machine.tick(now: 500, channels: [self.probe]).isEmpty)
        #expect(machine.received(self.probe, sequence: 1, now: 260) == [.proven])
        #expect(machine.isDelivering)
        #expect(machine.tick(now: 1_250, channels: [self.probe]) == [.publish(self.probe, sequence: 2)])
    }

    @Test func aProbeThatDoesNotComeBackStallsTheNodeAndItRecoversWhenOneDoes() {
        var machine = self.delivering()
        // Probes 2 to 5 go out at 1, 2, 3 and 4 s and none comes back (a path that passes
        // replies but drops messages): probe 2 is overdue at 4 s.
        var actions: [DeliveryCheckStateMachine.Action] = []
        for now in stride(from: 250, through: 3_750, by: 250) {
            actions += machine.tick(now: Int64(now), channels: [self.probe])
        }
        #expect(actions.filter { if case .publish = $0 { true } else { false } }.count == 3)
        #expect(machine.isDelivering)
        actions = machine.tick(now: 4_000, channels: [self.probe])
        guard actions.count == 2, case .stalled(let reason) = actions[1] else {
            Issue.record("a probe late by the timeout stalls the node: \(actions)")
            return
        }
        #expect(reason.contains("did not come back"))
        #expect(!machine.isDelivering)
        #expect(machine.health == .stalled(since: 4_000))
        // An old probe arriving late does not heal it while newer ones are still out.
        #expect(machine.received(self.probe, sequence: 2, now: 4_100).isEmpty)
        // The newest comes back: every earlier one is answered, and the node recovers.
        #expect(machine.received(self.probe, sequence: 5, now: 4_200) == [.recovered(stalledFor: 200)])
        #expect(machine.isDelivering)
    }

    @Test func stalledPastTheGraceTheStreamsAreHandedOverOnce() {
        var machine = self.delivering()
        var handOvers: [Int64] = []
        for now in stride(from: 250, through: 12_000, by: 250) {
            for action in machine.tick(now: Int64(now), channels: [self.probe]) where action == .handOver {
                handOvers.append(Int64(now))
            }
            // The owner finds no healthy node the first time, then one.
            if handOvers.count == 2 && !machine.handedOver { machine.streamsHandedOver() }
        }
        // Stalled at 4 s (probe 2, sent at 1 s), grace 5 s: asked at 9 s, again an interval
        // later, then never while handed over.
        #expect(handOvers == [9_000, 10_000])
        #expect(machine.handedOver)
        _ = machine.received(self.probe, sequence: 100, now: 12_100)
        #expect(machine.isDelivering && !machine.handedOver)
    }

    @Test func aProbeChannelWhoseSubscriptionIsNeverConfirmedStallsTheNode() {
        var machine = self.machine()
        _ = machine.tick(now: 0, channels: [self.probe])
        machine.subscribeFailed(self.probe)
        #expect(machine.tick(now: 250, channels: [self.probe]) == [.subscribe(self.probe)])
        let actions = machine.tick(now: 3_000, channels: [self.probe])
        guard case .stalled(let reason)? = actions.first else {
            Issue.record("an unconfirmed probe subscription stalls the node: \(actions)")
            return
        }
        #expect(reason.contains("not confirmed"))
    }

    @Test func probeChannelsFollowTheServersTheNodeSubscribesOn() {
        // A Redis Cluster: one probe channel per primary; a primary gone, its channel goes.
        var machine = self.machine()
        let (one, two) = ("__probe.node-a.0", "__probe.node-a.3")
        #expect(machine.tick(now: 0, channels: [one, two]) == [.subscribe(one), .subscribe(two)])
        machine.subscribed(one)
        machine.subscribed(two)
        let both = machine.tick(now: 10, channels: [one, two])
        #expect(both == [.publish(one, sequence: 1), .publish(two, sequence: 1)])
        _ = machine.received(one, sequence: 1, now: 20)
        // Proven only once every channel answered.
        #expect(!machine.isDelivering)
        #expect(machine.received(two, sequence: 1, now: 30) == [.proven])
        #expect(machine.tick(now: 40, channels: [one]) == [.unsubscribe(two)])
        // Two's outstanding probes left with it: they cannot stall the node.
        for now in stride(from: 250, through: 6_000, by: 250) {
            let actions = machine.tick(now: Int64(now), channels: [one])
            for case .publish(let channel, let sequence) in actions {
                _ = machine.received(channel, sequence: sequence, now: Int64(now) + 1)
            }
        }
        #expect(machine.isDelivering)
    }

    @Test func probesSlowerThanTheIntervalButInTimeProveTheNode() {
        // Each probe comes back 1.5 s after it went out: one is always out, none is late.
        var machine = self.machine()
        _ = machine.tick(now: 0, channels: [self.probe])
        machine.subscribed(self.probe)
        var sent: [(UInt64, Int64)] = []
        var proven = false
        for now in stride(from: Int64(0), through: 6_000, by: 250) {
            for case .publish(_, let sequence) in machine.tick(now: now, channels: [self.probe]) {
                sent.append((sequence, now))
            }
            while let first = sent.first, now - first.1 >= 1_500 {
                sent.removeFirst()
                if machine.received(self.probe, sequence: first.0, now: now).contains(.proven) { proven = true }
            }
            #expect(machine.health != .stalled(since: now), "stalled at \(now)")
        }
        #expect(proven && machine.isDelivering)
    }
}
