import Testing

@testable import Fanfare

/// Publishes that wait for replicas: one group in flight, the rest grouped behind it.
@Suite struct GroupCommitStateMachineTests {
    @Test func theFirstGoesAtOnceAndThoseThatArriveMeanwhileGoTogetherAfterIt() {
        var machine = GroupCommitStateMachine<Int>(limit: 10)
        guard case .send(let first) = machine.submit(1) else {
            Issue.record("nothing in flight: it goes at once")
            return
        }
        #expect(first == [1])
        for item in 2...5 {
            guard case .wait = machine.submit(item) else {
                Issue.record("\(item) waits for the group in flight")
                return
            }
        }
        #expect(machine.answered() == [2, 3, 4, 5])
        #expect(machine.answered() == nil)
        // Nothing in flight again: the next goes at once.
        guard case .send([6]) = machine.submit(6) else {
            Issue.record("6 goes at once")
            return
        }
    }

    @Test func pastTheBoundPublishesAreRefusedNotQueued() {
        var machine = GroupCommitStateMachine<Int>(limit: 2)
        _ = machine.submit(0)
        _ = machine.submit(1)
        _ = machine.submit(2)
        guard case .refuse(3) = machine.submit(3) else {
            Issue.record("a third waiting publish is refused")
            return
        }
        #expect(machine.waitingCount == 2)
        #expect(machine.answered() == [1, 2])
    }
}
