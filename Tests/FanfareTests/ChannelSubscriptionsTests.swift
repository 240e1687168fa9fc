import Testing

@testable import Fanfare

/// The node's channels, one deterministic window at a time.
@Suite struct ChannelSubscriptionsTests {
    private let idA = StreamID.next()
    private let idB = StreamID.next()

    private func machine() -> ChannelSubscriptions {
        ChannelSubscriptions(bufferLimit: 16)
    }

    private func ready(_ machine: inout ChannelSubscriptions, at head: Int) -> [String] {
        var log = machine.join(self.idA, channels: ["c"]).map(\.summary)
        log += machine.subscribed(["c"], generation: 1).map(\.summary)
        log += machine.headRead("c", head: Events.position(head), generation: 1).map(\.summary)
        return log
    }

    @Test func aStreamIsAttachedOnlyOnceItsChannelIsAcknowledgedAndItsHeadKnown() {
        var machine = self.machine()
        #expect(machine.join(self.idA, channels: ["c"]).map(\.summary) == ["subscribe [\"c\"] #1"])
        #expect(machine.subscribed(["c"], generation: 1).map(\.summary) == ["head c #1"])
        #expect(machine.headRead("c", head: Events.position(7), generation: 1).map(\.summary) == ["attach [7]"])
    }

    @Test func aSubscribeThatFailedBeforeTheSubscribersFirstReadyIsConfirmedByThatReady() {
        // The window: a SUBSCRIBE sent while the subscriber was still connecting fails
        // with "closed"; the hub leaves it to the subscriber, whose first connection then
        // reports ready, not a reconnect. The channel must not stay pending.
        var machine = self.machine()
        #expect(machine.join(self.idA, channels: ["c"]).map(\.summary) == ["subscribe [\"c\"] #1"])
        #expect(machine.subscriberReady().map(\.summary) == ["head c #1"])
        #expect(machine.headRead("c", head: Events.position(2), generation: 1).map(\.summary) == ["attach [2]"])
        // A ready channel is left alone by a later ready.
        #expect(machine.subscriberReady().isEmpty)
    }

    @Test func aChannelPendingPastTheCheckFailsItsStreamsSoTheyComeBack() {
        var machine = self.machine()
        _ = machine.join(self.idA, channels: ["c"])
        let mark = machine.generation
        // Pending since before the mark, still pending at the check: its stream fails.
        _ = machine.join(self.idB, channels: ["d"])
        #expect(machine.failPending(since: mark).map(\.summary) == ["fail"])
        // The next stream subscribes the channel again, in a new generation.
        #expect(machine.join(StreamID.next(), channels: ["c"]).map(\.summary) == ["subscribe [\"c\"] #3"])
        // A late confirmation of the failed generation changes nothing.
        #expect(machine.subscribed(["c"], generation: 1).isEmpty)
        // d, subscribed after the mark, fails only at a later check.
        #expect(machine.failPending(since: mark).isEmpty)
        #expect(machine.failPending(since: machine.generation).map(\.summary) == ["fail", "fail"])
    }

    @Test func aMovedSlotCatchesUpOnlyTheChannelsThatMoved() {
        var machine = self.machine()
        _ = self.ready(&machine, at: 5)
        _ = machine.join(self.idB, channels: ["d"])
        _ = machine.subscribed(["d"], generation: 2)
        _ = machine.headRead("d", head: Events.position(9), generation: 2)
        #expect(machine.reconnected(only: ["d"]).map(\.summary) == ["read d after 9"])
    }

    @Test func aSecondStreamJoiningAPendingChannelWaitsForTheSameAcknowledgement() {
        // The window: a second stream on a channel whose SUBSCRIBE is still in flight was
        // told __connected before Redis delivered to it.
        var machine = self.machine()
        _ = machine.join(self.idA, channels: ["c"])
        #expect(machine.join(self.idB, channels: ["c"]).isEmpty)
        #expect(machine.subscribed(["c"], generation: 1).map(\.summary) == ["head c #1"])
        let attached = machine.headRead("c", head: Events.position(3), generation: 1).map(\.summary)
        #expect(attached == ["attach [3]", "attach [3]"])
        // Joining a ready channel attaches at once, at the node's position.
        _ = machine.received(Events.event(4))
        #expect(machine.join(StreamID.next(), channels: ["c"]).map(\.summary) == ["attach [4]"])
    }

    @Test func aStreamOnSeveralChannelsWaitsForAllOfThem() {
        var machine = self.machine()
        _ = self.ready(&machine, at: 5)
        let joined = machine.join(self.idB, channels: ["c", "d"]).map(\.summary)
        #expect(joined == ["subscribe [\"d\"] #2"])
        #expect(machine.subscribed(["d"], generation: 2).map(\.summary) == ["head d #2"])
        _ = machine.received(Events.event(6))
        #expect(machine.headRead("d", head: .zero, generation: 2).map(\.summary) == ["attach [6, 0]"])
    }

    @Test func subscribesAndUnsubscribesOfAChannelKeepTheirOrderAndStaleAnswersAreIgnored() {
        // The window: a subscribe and an unsubscribe decided in one order reached Redis in
        // the other. The machine returns them in decision order (the hub sends them so),
        // and a late answer to an earlier subscribe cannot make a newer one ready.
        var machine = self.machine()
        var log = machine.join(self.idA, channels: ["c"]).map(\.summary)
        log += machine.leave(self.idA, channels: ["c"]).map(\.summary)
        log += machine.join(self.idB, channels: ["c"]).map(\.summary)
        #expect(log == ["subscribe [\"c\"] #1", "unsubscribe [\"c\"]", "subscribe [\"c\"] #2"])
        #expect(machine.subscribed(["c"], generation: 1).isEmpty)
        #expect(machine.subscribed(["c"], generation: 2).map(\.summary) == ["head c #2"])
        #expect(machine.headRead("c", head: .zero, generation: 1).isEmpty)
        #expect(machine.headRead("c", head: .zero, generation: 2).map(\.summary) == ["attach [0]"])
    }

    @Test func eventsThatArriveWhileTheHeadIsReadAreKeptWhenNewerThanIt() {
        var machine = self.machine()
        _ = machine.join(self.idA, channels: ["c"])
        _ = machine.subscribed(["c"], generation: 1)
        _ = machine.received(Events.event(4))
        _ = machine.received(Events.event(5))
        // The head read saw 4: 5 is the first event the streams get.
        let actions = machine.headRead("c", head: Events.position(4), generation: 1).map(\.summary)
        #expect(actions == ["deliver [5]", "attach [5]"])
    }

    @Test func afterAReconnectLiveEventsWaitForTheBackfillAndCannotMoveItsStart() {
        // The window: live events that arrived between a subscriber reconnect and the
        // backfill's start moved the backfill's starting point past the outage.
        var machine = self.machine()
        _ = self.ready(&machine, at: 3)
        #expect(machine.reconnected().map(\.summary) == ["read c after 3"])
        // 6 arrives live (4 and 5 were published during the outage): it waits.
        #expect(machine.received(Events.event(6)).isEmpty)
        #expect(machine.position(of: "c") == Events.position(3))
        let filled = machine.historyRead("c", page: Events.page(4...6, head: 6), generation: 1).map(\.summary)
        #expect(filled == ["deliver [4, 5, 6]"])
        #expect(machine.received(Events.event(7)).map(\.summary) == ["deliver [7]"])
    }

    @Test func aQuietNodeHasABackfillPointFromItsSubscription() {
        // The window: a node that had delivered nothing yet had no point to backfill from.
        var machine = self.machine()
        _ = self.ready(&machine, at: 0)
        #expect(machine.reconnected().map(\.summary) == ["read c after 0"])
        #expect(
            machine.historyRead("c", page: Events.page(1...2, head: 2), generation: 1).map(\.summary) == [
                "deliver [1, 2]"
            ]
        )
    }

    @Test func aBlipWithNothingMissedIsNoReset() {
        // The window: a node whose last delivered id aged out of history reset every
        // stream on any blip. With positions per channel, nothing after it is no gap.
        var machine = self.machine()
        _ = self.ready(&machine, at: 9)
        _ = machine.reconnected()
        #expect(machine.historyRead("c", page: Events.empty(head: 9), generation: 1).isEmpty)
        #expect(machine.received(Events.event(10)).map(\.summary) == ["deliver [10]"])
    }

    @Test func aGapHistoryCannotCoverResetsTheChannelsStreamsOnly() {
        var machine = self.machine()
        _ = self.ready(&machine, at: 3)
        #expect(machine.received(Events.event(8)).map(\.summary) == ["read c after 3"])
        let actions = machine.historyRead("c", page: Events.empty(head: 8, .trimmed), generation: 1).map(\.summary)
        #expect(actions == ["reset c trimmed to 8 from 3"])
        #expect(machine.received(Events.event(9)).map(\.summary) == ["deliver [9]"])
    }

    @Test func aSecondReconnectDuringTheBackfillReadsAgain() {
        var machine = self.machine()
        _ = self.ready(&machine, at: 3)
        _ = machine.reconnected()
        #expect(machine.reconnected().isEmpty)
        let first = machine.historyRead("c", page: Events.page(4...5, head: 5), generation: 1).map(\.summary)
        #expect(first == ["deliver [4, 5]", "read c after 5"])
    }

    @Test func aFailedSubscribeFailsItsWaitingStreamsAndTheNextStreamSubscribesAgain() {
        var machine = self.machine()
        _ = machine.join(self.idA, channels: ["c"])
        #expect(machine.subscribeFailed(["c"], generation: 1).map(\.summary) == ["fail"])
        #expect(machine.join(self.idB, channels: ["c"]).map(\.summary) == ["subscribe [\"c\"] #2"])
        // The failed stream leaves; the channel stays for the other.
        #expect(machine.leave(self.idA, channels: ["c"]).isEmpty)
        #expect(machine.streamCounts["c"] == 1)
    }

    @Test func aSubscriptionThatCameBackCountsAsAcknowledged() {
        var machine = self.machine()
        _ = machine.join(self.idA, channels: ["c"])
        #expect(machine.reconnected().map(\.summary) == ["head c #1"])
        #expect(machine.headRead("c", head: Events.position(2), generation: 1).map(\.summary) == ["attach [2]"])
    }
}
