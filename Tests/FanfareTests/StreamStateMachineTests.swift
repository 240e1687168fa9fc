import Testing

@testable import Fanfare

/// One stream's logic: fresh, resuming, catching up, live.
@Suite struct StreamStateMachineTests {
    private func machine(
        _ channels: [String] = ["c", "broadcast"],
        resume: StreamStateMachine.Resume = .none,
        cap: Int = 10_000,
        buffer: Int = 16
    ) -> StreamStateMachine {
        StreamStateMachine(channels: channels, resume: resume, replayCap: cap, bufferLimit: buffer)
    }

    private func cursor(_ positions: [String: Int]) -> StreamStateMachine.Resume {
        .cursor(Dictionary(uniqueKeysWithValues: positions.map { (Cursor.tag($0.key), Events.position($0.value)) }))
    }

    @Test func aNewStreamStartsAtTheNodesPositionsAndIsLive() {
        var machine = self.machine()
        #expect(machine.attached([Events.position(5), Events.position(9)]).map(\.summary) == ["connected [5, 9]"])
        #expect(machine.isLive)
        guard case .write = machine.live(Events.event(6), index: 0) else {
            Issue.record("6 follows 5")
            return
        }
        #expect(machine.positions == [Events.position(6), Events.position(9)])
        guard case .none = machine.live(Events.event(6), index: 0) else {
            Issue.record("a repeat")
            return
        }
    }

    @Test func nothingIsWrittenBeforeTheStreamIsAttached() {
        var machine = self.machine()
        guard case .none = machine.live(Events.event(1), index: 0) else {
            Issue.record("not attached yet")
            return
        }
    }

    @Test func aClientThatMissedNothingIsLiveAtOnce() {
        var machine = self.machine(resume: self.cursor(["c": 5, "broadcast": 9]))
        #expect(machine.attached([Events.position(5), Events.position(9)]).map(\.summary) == ["connected [5, 9]"])
        #expect(machine.isLive)
    }

    @Test func aResumeCatchesUpEachChannelInTurnThenReleasesWhatCameMeanwhile() {
        var machine = self.machine(resume: self.cursor(["c": 2, "broadcast": 7]))
        let start = machine.attached([Events.position(4), Events.position(9)]).map(\.summary)
        #expect(start == ["connected [2, 7]", "read 0 after 2"])
        #expect(!machine.isLive)
        // Live events meanwhile: c's wait; broadcast's too, its turn has not come.
        guard case .none = machine.live(Events.event(5), index: 0) else {
            Issue.record("c waits")
            return
        }
        guard case .none = machine.live(Events.event(10, channel: "broadcast"), index: 1) else {
            Issue.record("broadcast waits")
            return
        }
        let c = machine.read(Events.page(3...4, head: 4), index: 0).map(\.summary)
        #expect(c == ["event 3 [3, 7]", "event 4 [4, 7]", "event 5 [5, 7]", "read 1 after 7"])
        let broadcast = machine.read(Events.page(8...9, head: 9, channel: "broadcast"), index: 1).map(\.summary)
        #expect(broadcast == ["event 8 [5, 8]", "event 9 [5, 9]", "event 10 [5, 10]"])
        #expect(machine.isLive)
    }

    @Test func aChannelTheCursorDoesNotKnowStartsFresh() {
        var machine = self.machine(["c", "new"], resume: self.cursor(["c": 5]))
        #expect(machine.attached([Events.position(5), Events.position(3)]).map(\.summary) == ["connected [5, 3]"])
        #expect(machine.isLive)
    }

    @Test func anIdThatIsNotACursorStartsFreshWithOneResetForEveryChannel() {
        var machine = self.machine(resume: .unreadable("1795316004131-0"))
        #expect(
            machine.attached([Events.position(5), Events.position(9)]).map(\.summary) == [
                "connected [5, 9]", "reset [\"c\", \"broadcast\"] unknown [5, 9]",
            ]
        )
        #expect(machine.isLive)
    }

    @Test func aPositionRedisWouldRefuseIsAResetNotARetryLoop() {
        // The window: an id Redis rejects (say the largest possible) closed the stream in a
        // retry loop. Such a cursor does not even decode; one that decodes but names a
        // position the channel never had gets a reset for that channel.
        #expect(Cursor.decode("AX__________________________8") == nil)
        var machine = self.machine(resume: self.cursor(["c": 999_999, "broadcast": 9]))
        #expect(
            machine.attached([Events.position(5), Events.position(9)]).map(\.summary).last == "read 0 after 999999"
        )
        let reset = machine.read(Events.empty(head: 5, .unknown), index: 0).map(\.summary)
        #expect(reset == ["reset [\"c\"] unknown [5, 9]"])
        #expect(machine.isLive)
    }

    @Test func aTrimmedHistoryResetsOnlyItsChannel() {
        var machine = self.machine(resume: self.cursor(["c": 1, "broadcast": 2]))
        _ = machine.attached([Events.position(50), Events.position(4)])
        let reset = machine.read(Events.empty(head: 50, .trimmed), index: 0).map(\.summary)
        #expect(reset == ["reset [\"c\"] trimmed [50, 2]", "read 1 after 2"])
        let broadcast = machine.read(Events.page(3...4, head: 4, channel: "broadcast"), index: 1).map(\.summary)
        #expect(broadcast == ["event 3 [50, 3]", "event 4 [50, 4]"])
    }

    @Test func aResumeLongerThanTheCapIsResetInsteadOfReadToTheEnd() {
        var machine = self.machine(resume: self.cursor(["c": 0, "broadcast": 9]), cap: 3)
        _ = machine.attached([Events.position(10), Events.position(9)])
        #expect(
            machine.read(Events.page(1...2, head: 10), index: 0).map(\.summary) == [
                "event 1 [1, 9]", "event 2 [2, 9]", "read 0 after 2",
            ]
        )
        let capped = machine.read(Events.page(3...4, head: 10), index: 0).map(\.summary)
        #expect(capped == ["reset [\"c\"] capped [10, 9]"])
        #expect(machine.isLive)
    }

    @Test func aGapInALiveChannelIsReadLikeAResume() {
        var machine = self.machine()
        _ = machine.attached([Events.position(5), Events.position(9)])
        guard case .read(let index, let after) = machine.live(Events.event(8), index: 0) else {
            Issue.record("a gap reads")
            return
        }
        #expect(index == 0 && after == Events.position(5))
        #expect(
            machine.read(Events.page(6...7, head: 8), index: 0).map(\.summary) == [
                "event 6 [6, 9]", "event 7 [7, 9]", "event 8 [8, 9]",
            ]
        )
    }

    @Test func theNodesResetOfALiveChannelIsPassedOn() {
        var machine = self.machine()
        _ = machine.attached([Events.position(5), Events.position(9)])
        let reset = machine.nodeReset(
            index: 1,
            status: .gone,
            position: Events.position(20),
            from: Events.position(9)
        ).map(\.summary)
        #expect(reset == ["reset [\"broadcast\"] gone [5, 20]"])
        guard case .write = machine.live(Events.event(21, channel: "broadcast"), index: 1) else {
            Issue.record("21 follows the reset")
            return
        }
    }

    @Test func aStreamAheadOfTheNodeChecksItsOwnPositionInsteadOfFollowingTheNodesReset() {
        // Resumed with another node's cursor: at 30 on broadcast while this node, still
        // backfilling, is at 9.
        var machine = self.machine(resume: self.cursor(["c": 5, "broadcast": 30]))
        #expect(
            machine.attached([Events.position(5), Events.position(9)]).map(\.summary) == [
                "connected [5, 30]", "read 1 after 30",
            ]
        )
        #expect(machine.read(Events.empty(head: 30), index: 1).isEmpty)
        #expect(machine.isLive)
        // The node's backfill from 9 finds history trimmed up to 20 and jumps there: the
        // stream is past that, so no reset and no move backwards; it reads after its own
        // position instead, and what history has there says it missed nothing.
        let outputs = machine.nodeReset(
            index: 1,
            status: .trimmed,
            position: Events.position(20),
            from: Events.position(9)
        ).map(\.summary)
        #expect(outputs == ["read 1 after 30"])
        #expect(machine.positions == [Events.position(5), Events.position(30)])
        // The node's events from 20 on arrive meanwhile; those the stream has are dropped.
        for n in 21...31 {
            guard case .none = machine.live(Events.event(n, channel: "broadcast"), index: 1) else {
                Issue.record("events wait while the stream checks its position")
                return
            }
        }
        // History after 30 is intact: 31 comes once, from the read; the buffered copies go.
        #expect(
            machine.read(Events.page(31...31, head: 31, channel: "broadcast"), index: 1).map(\.summary) == [
                "event 31 [5, 31]"
            ]
        )
        #expect(machine.isLive)
        #expect(machine.positions == [Events.position(5), Events.position(31)])
    }
}
