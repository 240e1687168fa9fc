import Testing

@testable import Fanfare

struct LimiterTests {
    @Test func thePublishBucketAllowsItsRateThenRefillsOverTime() {
        let limiter = PublishRateLimiter(rate: 5)
        let start = ContinuousClock.now
        let first = (0..<6).map { _ in limiter.allow("key", now: start) }
        #expect(first == [true, true, true, true, true, false])
        // Other credentials have their own bucket.
        #expect(limiter.allow("other", now: start))
        // One token comes back every 200 ms.
        #expect(limiter.allow("key", now: start + .milliseconds(100)) == false)
        #expect(limiter.allow("key", now: start + .milliseconds(210)))
        #expect(limiter.allow("key", now: start + .milliseconds(220)) == false)
        // A long pause refills to the burst size, no more.
        let later = start + .seconds(60)
        #expect((0..<7).map { _ in limiter.allow("key", now: later) }.filter { $0 }.count == 5)
        #expect(PublishRateLimiter(rate: 0).allow("anyone", now: start))
    }

    @Test func connectionPlacesAreTakenAndGivenBack() {
        let limiter = ConnectionLimiter(
            limits: LimitsConfiguration(connectionsPerClient: 2, connectionsPerIP: 3, connectionsPerNode: 4)
        )
        #expect(limiter.acquire(clientID: "a", address: "1") == nil)
        #expect(limiter.acquire(clientID: "a", address: "1") == nil)
        #expect(limiter.acquire(clientID: "a", address: "2") == .client)
        #expect(limiter.acquire(clientID: "b", address: "1") == nil)
        #expect(limiter.acquire(clientID: "c", address: "1") == .address)
        #expect(limiter.acquire(clientID: "c", address: "2") == nil)
        #expect(limiter.acquire(clientID: "d", address: "3") == .node)
        limiter.release(clientID: "a", address: "1")
        #expect(limiter.acquire(clientID: "a", address: "3") == nil)
    }
}
