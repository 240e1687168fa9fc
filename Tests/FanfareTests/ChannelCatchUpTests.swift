import Testing

@testable import Fanfare

@Suite struct ChannelCatchUpTests {
    private func live(at n: Int, limit: Int = 8) -> ChannelCatchUp {
        ChannelCatchUp(position: Events.position(n), isLive: true, bufferLimit: limit)
    }

    @Test func theFastPathAdvancesExactlyWhenLiveWouldDeliver() {
        // Random live events (in order, repeated, with gaps) and reads; a reader that
        // tries `advance` first must end every step where one that only uses `live` does.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var plain = self.live(at: 0)
            var fast = plain
            var newest = 0
            for _ in 0..<40 {
                let step = Int.random(in: 0..<10, using: &generator)
                if step == 0 {
                    // The read in flight (if any) answers with everything up to the newest.
                    let page = HistoryPage(
                        status: .ok,
                        head: Events.position(newest),
                        events: (0..<newest).map { Events.event($0 + 1) }
                    )
                    _ = plain.read(page)
                    _ = fast.read(page)
                    continue
                }
                let n = max(1, newest + Int.random(in: -2...2, using: &generator))
                newest = max(newest, n)
                let event = Events.event(n)
                let expected = plain.live(event)
                let advanced = fast.advance(to: event.position, after: event.predecessor)
                if advanced {
                    guard case .deliver = expected else {
                        Issue.record("advance moved the reader where live did not deliver")
                        return
                    }
                } else {
                    let outcome = fast.live(event)
                    #expect("\(outcome)" == "\(expected)")
                }
                #expect(fast.position == plain.position && fast.isLive == plain.isLive)
            }
        }
    }

    @Test func eventsThatFollowOnAreDeliveredAndRepeatsDropped() {
        var catchUp = self.live(at: 3)
        guard case .deliver = catchUp.live(Events.event(4)) else {
            Issue.record("4 follows 3")
            return
        }
        guard case .drop = catchUp.live(Events.event(4)) else {
            Issue.record("4 again")
            return
        }
        guard case .drop = catchUp.live(Events.event(2)) else {
            Issue.record("2 is older")
            return
        }
        #expect(catchUp.position == Events.position(4))
        #expect(catchUp.isLive)
    }

    @Test func aGapIsFilledFromHistoryBeforeTheEventsAfterIt() {
        var catchUp = self.live(at: 3)
        // 6 says its predecessor is 5: 4 and 5 never arrived.
        guard case .read(let after) = catchUp.live(Events.event(6)) else {
            Issue.record("a gap reads")
            return
        }
        #expect(after == Events.position(3))
        guard case .buffered = catchUp.live(Events.event(7)) else {
            Issue.record("7 waits")
            return
        }
        #expect(!catchUp.isLive)
        let step = catchUp.read(Events.page(4...5, head: 7))
        #expect(step.deliver.map(\.position.milliseconds) == [4, 5, 6, 7])
        #expect(step.read == nil && step.becameLive)
        #expect(catchUp.position == Events.position(7) && catchUp.isLive)
    }

    @Test func aFullPageReadsOnAndAPartialOneEndsTheCatchUp() {
        var catchUp = ChannelCatchUp(position: Events.position(0), isLive: false, bufferLimit: 8)
        #expect(catchUp.start().read == Events.position(0))
        let first = catchUp.read(Events.page(1...3, head: 5))
        #expect(first.deliver.count == 3 && first.read == Events.position(3))
        let second = catchUp.read(Events.page(4...5, head: 5))
        #expect(second.deliver.map(\.position.milliseconds) == [4, 5])
        #expect(second.read == nil && second.becameLive)
    }

    @Test func aFullBufferDropsItsOldestAndReadsOnUntilHistoryMeetsTheRest() {
        var catchUp = ChannelCatchUp(position: Events.position(0), isLive: false, bufferLimit: 2)
        _ = catchUp.start()
        for n in 11...14 { _ = catchUp.live(Events.event(n)) }  // 11 and 12 are dropped
        // History up to 10 (the head when read): the buffer starts at 13, so read on.
        let first = catchUp.read(Events.page(1...10, head: 10))
        #expect(first.deliver.count == 10 && first.read == Events.position(10))
        let second = catchUp.read(Events.page(11...12, head: 14))
        // The page stops before the head, but the buffer (13, 14) goes on from it: no more
        // history is needed.
        #expect(second.read == nil && second.deliver.map(\.position.milliseconds) == [11, 12, 13, 14])
        #expect(second.becameLive && catchUp.position == Events.position(14))
    }

    @Test func aPageThatStopsBeforeTheHeadIsFollowedByAnotherRead() {
        // Pages are bounded in bytes: a short page is not the end of history.
        var catchUp = ChannelCatchUp(position: Events.position(0), isLive: false, bufferLimit: 8)
        _ = catchUp.start()
        #expect(catchUp.read(Events.page(1...2, head: 5)).read == Events.position(2))
        let last = catchUp.read(Events.page(3...5, head: 5))
        #expect(last.read == nil && last.becameLive && catchUp.position == Events.position(5))
    }

    @Test func theBufferIsBoundedInBytesAsWellAsInEvents() {
        var catchUp = ChannelCatchUp(position: Events.position(0), isLive: false, bufferLimit: 100, bufferBytes: 30)
        _ = catchUp.start()
        // Each body is 9 to 10 bytes ("data: n\n\n"): three fit, the oldest go.
        for n in 1...8 { _ = catchUp.live(Events.event(n)) }
        #expect(catchUp.bufferedCount == 3 && catchUp.bufferedByteCount <= 30)
        let step = catchUp.read(Events.page(1...5, head: 8))
        #expect(step.read == nil && step.deliver.map(\.position.milliseconds) == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(catchUp.bufferedCount == 0 && catchUp.bufferedByteCount == 0)
    }

    @Test func aDropDuringAReadReadsAgainAfterIt() {
        // The window: the subscription drops again while history is read; what was
        // published during the second outage is in neither the read nor the buffer.
        var catchUp = self.live(at: 3)
        #expect(catchUp.restart().read == Events.position(3))
        #expect(catchUp.restart().read == nil)  // a read is in flight: it reads again after it
        let answered = catchUp.read(Events.page(4...5, head: 5))
        #expect(answered.deliver.count == 2)
        #expect(answered.read == Events.position(5))
        #expect(catchUp.read(Events.page(6...6, head: 6)).becameLive)
    }

    @Test func whatHistoryCannotCoverIsAJumpToTheNewestPosition() {
        var catchUp = self.live(at: 3)
        _ = catchUp.live(Events.event(9))
        _ = catchUp.live(Events.event(10))
        let step = catchUp.read(Events.empty(head: 9, .trimmed))
        #expect(step.reset == .init(status: .trimmed, position: Events.position(9), from: Events.position(3)))
        #expect(step.deliver.map(\.position.milliseconds) == [10])
        #expect(step.becameLive && catchUp.position == Events.position(10))
    }

    @Test func aPositionNewerThanTheChannelJumpsBackToItsHead() {
        var catchUp = ChannelCatchUp(position: Events.position(1_000), isLive: false, bufferLimit: 8)
        _ = catchUp.start()
        let step = catchUp.read(Events.empty(head: 5, .unknown))
        #expect(step.reset?.status == .unknown)
        #expect(catchUp.position == Events.position(5) && catchUp.isLive)
        guard case .deliver = catchUp.live(Events.event(6)) else {
            Issue.record("6 follows the head")
            return
        }
    }
}

@Test func afterAHistoryStartedOverNothingOfTheOldOneIsDeliveredAgain() {
    // The window: a reader at 35 (the first event of a history that had started over,
    // after 0) keeps 35 in its buffer; the history expires and starts over again, and
    // a late copy of 35, whose predecessor is 0 like every first event's, arrives.
    var catchUp = ChannelCatchUp(position: Events.position(0), isLive: false, bufferLimit: 8)
    _ = catchUp.start()
    _ = catchUp.live(Events.event(35, after: 0))
    #expect(catchUp.read(Events.page(35...35, head: 36)).read == Events.position(35))
    let gone = catchUp.read(HistoryPage(status: .gone, head: .zero, events: []))
    #expect(gone.reset?.status == .gone && gone.deliver.isEmpty)
    #expect(catchUp.floor == Events.position(35))
    guard case .drop = catchUp.live(Events.event(35, after: 0)) else {
        Issue.record("35 of the old history must not come again")
        return
    }
    // The new history's first event (after 0, newer than anything old) is delivered.
    guard case .deliver = catchUp.live(Events.event(50, after: 0)) else {
        Issue.record("50 starts the new history")
        return
    }
    #expect(catchUp.floor == nil)
}

extension HistoryPage {
    func withEvents(_ range: ClosedRange<Int>) -> HistoryPage {
        HistoryPage(status: self.status, head: self.head, events: range.map { Events.event($0) })
    }
}
