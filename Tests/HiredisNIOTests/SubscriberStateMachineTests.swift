import NIOCore
import Testing

@testable import HiredisNIO

@Suite struct SubscriberStateMachineTests {
    private func makeMachine() -> SubscriberStateMachine {
        SubscriberStateMachine(initialDelay: .milliseconds(50), maximumDelay: .milliseconds(400))
    }

    @Test func subscriptionsMadeBeforeConnectingGoOutOnConnect() {
        var machine = self.makeMachine()
        #expect(machine.start() == true)
        #expect(machine.start() == false)
        let early = machine.subscribe(.channel, ["b", "a"])
        #expect(early.send.isEmpty && early.ready.isEmpty && early.fail.isEmpty)
        _ = machine.subscribe(.pattern, ["p*"])

        let connected = machine.connected()
        #expect(connected.channels == ["a", "b"])
        #expect(connected.patterns == ["p*"])
        #expect(!connected.becameActive)
        #expect(!connected.isReconnect)

        #expect(machine.acknowledged(.channel, "a") == .init(nameReady: true, becameActive: false, isReconnect: false))
        #expect(machine.acknowledged(.channel, "b").nameReady)
        let last = machine.acknowledged(.pattern, "p*")
        #expect(last.becameActive && !last.isReconnect)
        #expect(machine.phase == .active)
    }

    @Test func shardChannelsAreWantedApartAndResentOnReconnect() {
        var machine = self.makeMachine()
        _ = machine.start()
        _ = machine.subscribe(.shard, ["s1"])
        _ = machine.subscribe(.channel, ["s1"])
        let connected = machine.connected()
        #expect(connected.channels == ["s1"])
        #expect(connected.shardChannels == ["s1"])
        #expect(machine.acknowledged(.shard, "s1").nameReady)
        #expect(machine.acknowledged(.channel, "s1").becameActive)
        _ = machine.connectionLost()
        _ = machine.backoffElapsed()
        #expect(machine.connected().shardChannels == ["s1"])
    }

    /// In a cluster the server ends a sharded subscription when its slot moves: an
    /// unsubscribe nobody sent. The name is then no longer wanted, and the caller is told.
    @Test func anUnsubscribeNobodySentIsTheServersAndDropsTheName() {
        var machine = self.makeMachine()
        _ = machine.start()
        _ = machine.subscribe(.shard, ["moved", "stays"])
        _ = machine.connected()
        _ = machine.acknowledged(.shard, "moved")
        _ = machine.acknowledged(.shard, "stays")
        let dropped = machine.acknowledged(.shard, "moved", unsubscribed: true)
        #expect(dropped.droppedByServer && !dropped.nameReady)
        #expect(machine.shardChannels == ["stays"])
        // The acknowledgement of an unsubscribe that was sent is not the server's own.
        #expect(machine.unsubscribe(.shard, ["stays"]) == ["stays"])
        #expect(!machine.acknowledged(.shard, "stays", unsubscribed: true).droppedByServer)
        // Nor is a late one for a name nobody wants.
        #expect(!machine.acknowledged(.shard, "moved", unsubscribed: true).droppedByServer)
    }

    @Test func anEmptySubscriberIsActiveAsSoonAsItConnects() {
        var machine = self.makeMachine()
        _ = machine.start()
        let connected = machine.connected()
        #expect(connected.becameActive)
        #expect(machine.phase == .active)
    }

    @Test func subscribingTwiceSendsOnceAndWaitsForTheAcknowledgement() {
        var machine = self.makeMachine()
        _ = machine.start()
        _ = machine.connected()
        let first = machine.subscribe(.channel, ["x"])
        #expect(first.send == ["x"])
        #expect(first.ready.isEmpty)
        let second = machine.subscribe(.channel, ["x"])
        #expect(second.send.isEmpty)
        #expect(second.ready.isEmpty)  // still in flight
        #expect(machine.acknowledged(.channel, "x").nameReady)
        #expect(machine.subscribe(.channel, ["x"]).ready == ["x"])
    }

    @Test func aNameIsNotReadyUntilEveryCommandForItIsAcknowledged() {
        var machine = self.makeMachine()
        _ = machine.start()
        _ = machine.connected()
        #expect(machine.subscribe(.channel, ["x"]).send == ["x"])
        #expect(machine.unsubscribe(.channel, ["x"]) == ["x"])
        #expect(machine.subscribe(.channel, ["x"]).send == ["x"])
        #expect(!machine.acknowledged(.channel, "x").nameReady)  // SUBSCRIBE
        #expect(!machine.acknowledged(.channel, "x").nameReady)  // UNSUBSCRIBE
        #expect(machine.acknowledged(.channel, "x").nameReady)  // SUBSCRIBE again
    }

    @Test func unsubscribingSomethingNotSubscribedSendsNothing() {
        var machine = self.makeMachine()
        _ = machine.start()
        _ = machine.connected()
        #expect(machine.unsubscribe(.channel, ["never"]).isEmpty)
    }

    @Test func reconnectsWithDoublingDelayAndResubscribes() {
        var machine = self.makeMachine()
        _ = machine.start()
        _ = machine.subscribe(.channel, ["a"])
        _ = machine.connected()
        _ = machine.acknowledged(.channel, "a")

        #expect(machine.connectionLost() == .milliseconds(50))
        #expect(machine.subscribe(.channel, ["b"]).fail == ["b"])  // no connection to wait on
        #expect(machine.backoffElapsed() == true)
        #expect(machine.connectionLost() == .milliseconds(100))
        #expect(machine.backoffElapsed() == true)
        #expect(machine.connectionLost() == .milliseconds(200))
        #expect(machine.backoffElapsed() == true)
        #expect(machine.connectionLost() == .milliseconds(400))
        #expect(machine.backoffElapsed() == true)
        #expect(machine.connectionLost() == .milliseconds(400))
        #expect(machine.backoffElapsed() == true)

        let connected = machine.connected()
        #expect(connected.channels == ["a", "b"])
        #expect(connected.isReconnect)
        _ = machine.acknowledged(.channel, "a")
        let done = machine.acknowledged(.channel, "b")
        #expect(done.becameActive && done.isReconnect)
        // A successful connection resets the back-off.
        #expect(machine.connectionLost() == .milliseconds(50))
    }

    @Test func lateAcknowledgementsFromAnOldConnectionAreIgnored() {
        var machine = self.makeMachine()
        _ = machine.start()
        _ = machine.connected()
        _ = machine.subscribe(.channel, ["a"])
        _ = machine.connectionLost()
        let late = machine.acknowledged(.channel, "a")
        #expect(!late.nameReady)
        #expect(!late.becameActive)
    }

    @Test func closingStopsEverything() {
        var machine = self.makeMachine()
        _ = machine.start()
        _ = machine.connected()
        machine.close()
        #expect(machine.connectionLost() == nil)
        #expect(machine.backoffElapsed() == false)
        #expect(machine.subscribe(.channel, ["a"]).fail == ["a"])
    }
    /// When the server moved (a new master) the subscriber reconnects at once from every
    /// phase, and the back-off that failures on the old server built up starts over.
    @Test func aServerThatMovedIsReconnectedToAtOnceFromEveryPhase() {
        var machine = self.makeMachine()
        #expect(machine.reconnect() == .none)  // not started
        _ = machine.start()
        #expect(machine.reconnect() == .restartConnect)
        #expect(machine.phase == .connecting)
        _ = machine.subscribe(.channel, ["a"])
        _ = machine.connected()
        _ = machine.acknowledged(.channel, "a")
        #expect(machine.phase == .active)

        // Connected: close, and the loss that follows has no delay; the next one does.
        #expect(machine.reconnect() == .closeConnection)
        #expect(machine.connectionLost() == .zero)
        #expect(machine.backoffElapsed() == true)
        #expect(machine.connectionLost() == .milliseconds(50))
        _ = machine.backoffElapsed()
        #expect(machine.connectionLost() == .milliseconds(100))
        #expect(machine.connectionLost() == .milliseconds(200))

        // Backing off: connect now, with the back-off started over.
        #expect(machine.reconnect() == .connectNow)
        #expect(machine.phase == .connecting)
        #expect(machine.backoffElapsed() == false)
        #expect(machine.connectionLost() == .milliseconds(50))

        // A reconnect after resubscribing is reported as one, so the caller backfills.
        _ = machine.backoffElapsed()
        let connected = machine.connected()
        #expect(connected.channels == ["a"] && connected.isReconnect)

        machine.close()
        #expect(machine.reconnect() == .none)
        #expect(machine.connectionLost() == nil)
    }
    /// A cluster answers an SSUBSCRIBE for a slot it does not serve with one MOVED (or ASK)
    /// for the whole command: every shard channel of that slot is let go, nothing more is
    /// awaited for them, and a resubscription they held up completes.
    @Test func aRedirectedSlotLetsGoOfItsShardChannelsOnly() {
        var machine = self.makeMachine()
        _ = machine.start()
        let slot = RedisClusterSlot.of("{s}a")
        _ = machine.subscribe(.shard, ["{s}a", "{s}b", "elsewhere"])
        _ = machine.subscribe(.channel, ["{s}a"])
        _ = machine.connected()
        _ = machine.acknowledged(.shard, "elsewhere")
        _ = machine.acknowledged(.channel, "{s}a")
        #expect(machine.phase == .resubscribing)

        let redirected = machine.redirected(slot: slot)
        #expect(redirected.dropped == ["{s}a", "{s}b"])
        #expect(redirected.becameActive && redirected.isReconnect == false)
        #expect(machine.phase == .active)
        #expect(machine.shardChannels == ["elsewhere"])
        #expect(machine.channels == ["{s}a"])  // a plain channel of the same name stays
        // A second MOVED for the same slot (another command) finds nothing left.
        #expect(machine.redirected(slot: slot).dropped.isEmpty)
        // Subscribing again sends it again (the owner routes it elsewhere, or back here).
        #expect(machine.subscribe(.shard, ["{s}a"]).send == ["{s}a"])
    }
}
