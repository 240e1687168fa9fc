import Testing

@testable import Fanfare

@Suite struct CORSPolicyTests {
    @Test func anyOriginIsReflectedUnderTheWildcard() {
        let policy = CORSPolicy(origins: ["*"], allowCredentials: false)
        #expect(policy.allowedOrigin("https://app.example.org") == "https://app.example.org")
        #expect(
            policy.headers(origin: "https://app.example.org").map { "\($0.0): \($0.1)" } == [
                "Access-Control-Allow-Origin: https://app.example.org", "Vary: Origin",
            ]
        )
    }

    @Test func absentEmptyAndNullOriginsGetNothing() {
        let policy = CORSPolicy(origins: ["*"], allowCredentials: true)
        for origin in [nil, "", "null"] {
            #expect(policy.allowedOrigin(origin) == nil, "\(String(describing: origin))")
            #expect(policy.headers(origin: origin).isEmpty)
            #expect(policy.preflightHeaders(origin: origin).isEmpty)
        }
    }

    @Test func exactOriginsMatchSchemeHostAndPortExactly() {
        let policy = CORSPolicy(origins: ["https://app.example.org"], allowCredentials: false)
        #expect(policy.allowedOrigin("https://app.example.org") != nil)
        #expect(policy.allowedOrigin("http://app.example.org") == nil)
        #expect(policy.allowedOrigin("https://app.example.org:8443") == nil)
        #expect(policy.allowedOrigin("https://evil.example.org") == nil)
    }

    @Test func subdomainPatternsMatchAnySubdomainSchemeAndPortButNotLookAlikes() {
        let policy = CORSPolicy(origins: ["*.example.com"], allowCredentials: false)
        #expect(policy.allowedOrigin("https://a.example.com") != nil)
        #expect(policy.allowedOrigin("http://a.b.example.com:8080") != nil)
        #expect(policy.allowedOrigin("https://example.com") == nil)
        #expect(policy.allowedOrigin("https://badexample.com") == nil)
        #expect(policy.allowedOrigin("https://example.com.evil.net") == nil)
        #expect(policy.allowedOrigin("not an origin") == nil)
    }

    @Test func credentialsAreAllowedOnlyWhenConfigured() {
        let with = CORSPolicy(origins: ["https://app.example.org"], allowCredentials: true)
        #expect(
            with.headers(origin: "https://app.example.org").contains {
                $0 == ("Access-Control-Allow-Credentials", "true")
            }
        )
        let without = CORSPolicy(origins: ["https://app.example.org"], allowCredentials: false)
        #expect(
            !without.headers(origin: "https://app.example.org").contains { $0.0 == "Access-Control-Allow-Credentials" }
        )
    }

    @Test func preflightsNameTheMethodsAndHeadersStreamsAndPublishesUse() {
        let policy = CORSPolicy(origins: ["https://app.example.org"], allowCredentials: false)
        let headers = Dictionary(uniqueKeysWithValues: policy.preflightHeaders(origin: "https://app.example.org"))
        #expect(headers["Access-Control-Allow-Methods"] == "GET, POST, OPTIONS")
        #expect(headers["Access-Control-Allow-Headers"] == "Content-Type, Authorization, Last-Event-ID, Cache-Control")
        #expect(headers["Access-Control-Max-Age"] == "600")
        #expect(policy.preflightHeaders(origin: "https://other.example.org").isEmpty)
    }
}
