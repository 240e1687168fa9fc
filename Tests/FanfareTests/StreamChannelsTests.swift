import Testing

@testable import Fanfare

struct StreamChannelsTests {
    @Test func aStreamIsOnItsClientItsUserItsTopicsAndBroadcast() throws {
        let stream = try StreamChannels(requested: "ann", userID: "42", topics: " orders, alerts ,orders,", grant: nil)
        #expect(stream.clientID == "ann")
        #expect(stream.channels == ["client:ann", "user:42", "orders", "alerts", "broadcast"])
    }

    @Test func theTopicsAreBoundedAndAGrantDoesNotWidenTheBound() throws {
        let three = "t1,t2,t3"
        // The bound counts the topics asked for, once each: not the client, user and
        // broadcast channels, and not repeats.
        let atBound = try StreamChannels(
            requested: "a",
            userID: "u",
            topics: three + ",t1,broadcast",
            grant: nil,
            maximumTopics: 4
        )
        #expect(atBound.channels == ["client:a", "user:u", "t1", "t2", "t3", "broadcast"])
        for grant in [nil, Grant(userID: "u", patterns: ["*"]), Grant(userID: "u", patterns: ["client:a", "t*"])] {
            do {
                _ = try StreamChannels(
                    requested: "a",
                    userID: nil,
                    topics: three + ",t4",
                    grant: grant,
                    maximumTopics: 3
                )
                Issue.record("four topics passed a bound of three with grant \(String(describing: grant))")
            } catch let error as FanfareError {
                #expect(error.code == .limitExceeded)
                #expect(error.message == "a stream may ask for at most 3 channels (--max-channels-per-stream)")
            }
        }
    }
}
