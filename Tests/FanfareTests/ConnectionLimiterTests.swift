import Testing

@testable import Fanfare

@Suite struct ConnectionLimiterTests {
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
