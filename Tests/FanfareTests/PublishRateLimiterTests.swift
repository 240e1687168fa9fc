import Testing

@testable import Fanfare

@Suite struct PublishRateLimiterTests {
    private let start = ContinuousClock.now

    @Test func aBurstUpToTheRateIsAllowedThenRefused() {
        let limiter = PublishRateLimiter(rate: 3)
        #expect((0..<3).allSatisfy { _ in limiter.allow("key", now: self.start) })
        #expect(!limiter.allow("key", now: self.start))
    }

    @Test func tokensComeBackAtTheRate() {
        let limiter = PublishRateLimiter(rate: 2)
        #expect(limiter.allow("key", now: self.start))
        #expect(limiter.allow("key", now: self.start))
        #expect(!limiter.allow("key", now: self.start + .milliseconds(100)))
        // Half a second at 2 per second refills one token, not more.
        #expect(limiter.allow("key", now: self.start + .milliseconds(600)))
        #expect(!limiter.allow("key", now: self.start + .milliseconds(600)))
        // A long pause refills to the burst, never beyond it.
        let later = self.start + .seconds(60)
        #expect(limiter.allow("key", now: later))
        #expect(limiter.allow("key", now: later))
        #expect(!limiter.allow("key", now: later))
    }

    @Test func eachCredentialHasItsOwnBucket() {
        let limiter = PublishRateLimiter(rate: 1)
        #expect(limiter.allow("a", now: self.start))
        #expect(!limiter.allow("a", now: self.start))
        #expect(limiter.allow("b", now: self.start))
    }

    @Test func aRateOfZeroNeverRefuses() {
        let limiter = PublishRateLimiter(rate: 0)
        #expect((0..<1_000).allSatisfy { _ in limiter.allow("key", now: self.start) })
    }
}
