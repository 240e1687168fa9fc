import Fanfare
import Foundation
import JWTKit
import NIOCore
import NIOPosix
import ServerSentEvents
import Testing

/// Tokens, credentials, CORS, limits and bad input, against embedded nodes (the rules do
/// not depend on Redis).
@Suite(.timeLimit(.minutes(2)))
struct SecurityIntegrationTests {
    static let secret = "test-secret-0123456789abcdef0123456789"
    static let publisherKey = "publisher-key-123"
    static let adminKey = "admin-key-456"

    private func secured(
        publicKeyPEM: String? = nil,
        configure: @escaping (inout FanfareConfiguration) -> Void = { _ in }
    ) async throws -> NodeHarness {
        try await NodeHarness(nodes: 1, embedded: true) { configuration in
            configuration.security = SecurityConfiguration(
                jwtSecret: publicKeyPEM == nil ? Self.secret : nil,
                jwtPublicKeyPEM: publicKeyPEM,
                publisherKey: Self.publisherKey,
                adminKey: Self.adminKey,
                corsAllowCredentials: true
            )
            // With credentials the origins must be named (any origin is refused at start).
            configuration.corsOrigins = ["https://app.example.org", "*.example.com"]
            configure(&configuration)
        }
    }

    private func token(
        sub: String = "42",
        channels: [String]? = nil,
        expiresIn: TimeInterval = 3600,
        publish: Bool = false,
        admin: Bool = false,
        audience: String? = nil,
        issuer: String? = nil
    ) async throws -> String {
        try await TokenMinter.mint(
            secret: Self.secret,
            subject: sub,
            channels: channels,
            expiresIn: expiresIn,
            publish: publish,
            admin: admin,
            audience: audience,
            issuer: issuer
        )
    }

    private func call(
        _ method: String,
        _ url: String,
        body: String? = nil,
        headers: [(String, String)] = []
    ) async throws -> (status: Int, json: [String: Any], response: TestHTTPClient.Response) {
        let response = try await TestHTTPClient.request(method, url, body: body, headers: headers)
        let json = (try? JSONSerialization.jsonObject(with: Data(response.body.utf8))) as? [String: Any] ?? [:]
        return (response.status, json, response)
    }

    private func publish(_ harness: NodeHarness, _ body: String) async throws -> Int {
        try await self.call(
            "POST",
            harness.urls[0] + "/api/sse/notify",
            body: body,
            headers: [("Authorization", "Bearer \(Self.publisherKey)")]
        ).status
    }

    private func channels(of stream: TestStream) async throws -> [String] {
        let connected = try await stream.connected()
        let object = try JSONSerialization.jsonObject(with: Data((connected["data"] ?? "").utf8)) as? [String: Any]
        return object?["channels"] as? [String] ?? []
    }

    /// A validly signed token whose `exp` is far beyond anything a timer can hold: the
    /// stream opens (the node does not trap on the conversion) and simply never expires.
    @Test func aTokenThatExpiresInBillionsOfYearsOpensAStream() async throws {
        let harness = try await self.secured()
        let token = try await self.token(channels: ["client:forever"], expiresIn: 1.0e17)
        let stream = try await TestStream(harness.urls[0] + "/api/sse/subscribe/forever?token=\(token)")
        #expect(try await self.channels(of: stream).contains("user:42"))
        #expect(try await self.publish(harness, #"{"userId":"42","event":"still"}"#) == 200)
        #expect(try await stream.next().event == "still")
        await stream.close()
        await harness.stop()
    }

    @Test func aTokenForUser42JoinsItsUserChannelOnly() async throws {
        let harness = try await self.secured()
        let token = try await self.token(sub: "42")
        // A userId parameter is ignored when tokens are on: the token's sub is the user.
        let stream = try await TestStream(harness.urls[0] + "/api/notifications/stream?userId=43&token=\(token)")
        let channels = try await self.channels(of: stream)
        #expect(channels.contains("user:42"))
        #expect(!channels.contains("user:43"))
        #expect(try await self.publish(harness, #"{"userId":"43","event":"not-for-you"}"#) == 200)
        #expect(try await self.publish(harness, #"{"userId":"42","event":"for-42"}"#) == 200)
        #expect(try await stream.next().event == "for-42")
        await stream.close()

        // Asking for another user's channel as a topic is refused.
        let asked = try await self.call(
            "GET",
            harness.urls[0] + "/api/notifications/stream?channels=user:43&token=\(token)"
        )
        #expect(asked.status == 403)
        await harness.stop()
    }

    /// A token's user is the same user on every node: streams of user 42 on two nodes get
    /// what a third node publishes to user 42, and the cluster counts them together.
    @Test(.enabled(if: RedisServerProcess.enabled))
    func aTokensUserReachesItsStreamsOnEveryNode() async throws {
        let harness = try await NodeHarness(nodes: 3) { configuration in
            configuration.security = SecurityConfiguration(
                jwtSecret: Self.secret,
                publisherKey: Self.publisherKey,
                adminKey: Self.adminKey
            )
        }
        let token = try await self.token(sub: "42")
        let other = try await self.token(sub: "7")
        var streams: [TestStream] = []
        for node in 0..<2 {
            let stream = try await TestStream(harness.urls[node] + "/api/notifications/stream?token=\(token)")
            #expect(try await self.channels(of: stream).contains("user:42"))
            streams.append(stream)
        }
        let seven = try await TestStream(harness.urls[1] + "/api/notifications/stream?token=\(other)")
        _ = try await seven.connected()
        let body = #"{"userId":"42","event":"for-42","payload":"hi"}"#
        let answer = try await self.call(
            "POST",
            harness.urls[2] + "/api/sse/notify",
            body: body,
            headers: [("Authorization", "Bearer \(Self.publisherKey)")]
        )
        #expect(answer.status == 200)
        for stream in streams {
            let event = try await stream.next()
            #expect(event.event == "for-42")
            #expect(event.data == #""hi""#)
        }
        // Counted cluster-wide by user, from any node: a publish to user 42 answers with
        // its matching connections (from the registry, refreshed every second).
        try await withDeadline("user 42's two connections in the counts") {
            while true {
                let probe = try await self.call(
                    "POST",
                    harness.urls[2] + "/api/sse/notify",
                    body: #"{"userId":"42","event":"probe"}"#,
                    headers: [("Authorization", "Bearer \(Self.publisherKey)")]
                )
                if probe.json["connections"] as? Int == 2 { return }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        // User 7 got none of it: the first event it sees is its own.
        #expect(try await self.publish(harness, #"{"userId":"7","event":"marker"}"#) == 200)
        #expect(try await seven.next().event == "marker")
        for stream in streams { await stream.close() }
        await seven.close()
        await harness.stop()
    }

    @Test func aWildcardGrantCoversItsPrefixOnly() async throws {
        let harness = try await self.secured()
        let token = try await self.token(channels: ["orders.*", "alerts"])
        let allowed = try await TestStream(
            harness.urls[0] + "/api/events?channels=orders.eu,alerts",
            headers: [("Authorization", "Bearer \(token)")]
        )
        #expect(try await self.channels(of: allowed).contains("orders.eu"))
        #expect(try await self.publish(harness, #"{"channel":"orders.eu","event":"order"}"#) == 200)
        #expect(try await allowed.next().event == "order")
        await allowed.close()

        let refused = try await self.call("GET", harness.urls[0] + "/api/events?channels=billing&token=\(token)")
        #expect(refused.status == 403)
        #expect(refused.json["ok"] as? Bool == false)
        // A client id is a channel too: it must be granted.
        let otherClient = try await self.call("GET", harness.urls[0] + "/api/sse/subscribe/alice?token=\(token)")
        #expect(otherClient.status == 403)
        let granted = try await self.token(channels: ["client:alice"])
        let alice = try await TestStream(
            harness.urls[0] + "/api/sse/subscribe/alice",
            headers: [("Cookie", "theme=dark; fanfare_token=\(granted)")]
        )
        #expect(try await self.channels(of: alice).contains("client:alice"))
        await alice.close()
        await harness.stop()
    }

    @Test func missingExpiredAndTamperedTokensAreUnauthorized() async throws {
        let harness = try await self.secured()
        let url = harness.urls[0] + "/api/notifications/stream"
        #expect(try await self.call("GET", url).status == 401)
        #expect(try await self.call("GET", url + "?token=not.a.token").status == 401)
        let expired = try await self.token(expiresIn: -60)
        #expect(try await self.call("GET", url + "?token=\(expired)").status == 401)
        // Within the leeway (10 s) a just-expired token still counts.
        let justExpired = try await self.token(expiresIn: -2)
        let late = try await TestStream(url + "?token=\(justExpired)")
        #expect(late.stream.status == 200)
        await late.close()

        let good = try await self.token()
        var parts = good.split(separator: ".").map(String.init)
        // The first character of the signature: the last one carries padding bits, and
        // changing only those leaves the decoded signature as it was.
        let first = parts[2].removeFirst()
        parts[2].insert(first == "A" ? "B" : "A", at: parts[2].startIndex)
        #expect(try await self.call("GET", url + "?token=\(parts.joined(separator: "."))").status == 401)
        // Signed with another secret.
        let forged = try await TokenMinter.mint(
            secret: "another-secret-0123456789abcdef0123456",
            subject: "42",
            channels: nil,
            expiresIn: 3600
        )
        #expect(try await self.call("GET", url + "?token=\(forged)").status == 401)
        // On the public port /metrics needs the admin credential (the refusal counts too).
        #expect(try await self.call("GET", harness.urls[0] + "/metrics").status == 401)
        let metrics = try await self.call(
            "GET",
            harness.urls[0] + "/metrics",
            headers: [("Authorization", "Bearer \(Self.adminKey)")]
        )
        #expect(metrics.status == 200)
        #expect(metrics.response.body.contains(#"fanfare_refusals_total{node="node-0",reason="unauthorized"} 6"#))
        await harness.stop()
    }

    @Test func audienceAndIssuerAreCheckedWhenConfigured() async throws {
        let harness = try await self.secured { configuration in
            configuration.security.audience = "fanfare-test"
            configuration.security.issuer = "https://auth.example.org"
        }
        let url = harness.urls[0] + "/api/notifications/stream"
        let refused: [(audience: String?, issuer: String?)] = [
            (nil, nil), (nil, "https://auth.example.org"), ("fanfare-test", nil),
            ("another-service", "https://auth.example.org"), ("fanfare-test", "https://evil.example.org"),
        ]
        for (audience, issuer) in refused {
            let token = try await self.token(audience: audience, issuer: issuer)
            let answer = try await self.call("GET", url + "?token=\(token)")
            #expect(answer.status == 401, "aud \(audience ?? "-") iss \(issuer ?? "-")")
            #expect(answer.response.body.contains("aud") || answer.response.body.contains("iss"))
        }
        let wrongPublisher = try await self.token(publish: true, audience: "another-service")
        let publish = try await self.call(
            "POST",
            harness.urls[0] + "/api/sse/notify",
            body: #"{"broadcast":true,"event":"x"}"#,
            headers: [("Authorization", "Bearer \(wrongPublisher)")]
        )
        #expect(publish.status == 401)
        let good = try await self.token(audience: "fanfare-test", issuer: "https://auth.example.org")
        let stream = try await TestStream(url + "?token=\(good)")
        #expect(stream.stream.status == 200)
        #expect(try await self.channels(of: stream).contains("user:42"))
        await stream.close()
        await harness.stop()
    }

    /// The node ends a stream once its token is no longer accepted, telling the client when
    /// to come back; the same token then gets 401.
    @Test func anOpenStreamEndsWhenItsTokenExpires() async throws {
        let harness = try await self.secured { $0.security.leewaySeconds = 0 }
        let url = harness.urls[0] + "/api/notifications/stream"
        let token = try await self.token(expiresIn: 3)
        let target = try TestHTTPClient.Target(url: harness.urls[0])
        let request = "GET /api/notifications/stream?token=\(token) HTTP/1.1\r\nHost: \(target.host)\r\n\r\n"
        let started = ContinuousClock.now
        let answer = try await RawHTTP.exchange(harness.urls[0], Array(request.utf8), seconds: 10)
        let elapsed = ContinuousClock.now - started
        #expect(answer.hasPrefix("HTTP/1.1 200 OK"), "\(answer.prefix(200))")
        // The last frame: when to come back, and why.
        let last = answer.components(separatedBy: "\n\n").dropLast().last ?? ""
        #expect(last.contains("retry: 2000") && last.contains(": token-expired"), "\(answer.suffix(80))")
        #expect(elapsed >= .milliseconds(900), "closed after \(elapsed)")
        #expect(try await self.call("GET", url + "?token=\(token)").status == 401)
        await harness.stop()
    }

    @Test func anES256TokenVerifiesWithThePublicKey() async throws {
        let key = ES256PrivateKey()
        let harness = try await self.secured(publicKeyPEM: key.publicKey.pemRepresentation)
        let token = try await TokenMinter.mint(
            privateKeyPEM: key.pemRepresentation,
            subject: "7",
            channels: ["news"],
            expiresIn: 600
        )
        let stream = try await TestStream(harness.urls[0] + "/api/events?channels=news&token=\(token)")
        #expect(try await self.channels(of: stream).contains("user:7"))
        await stream.close()
        // An HS256 token means nothing to a node that only has the public key.
        let hs = try await self.token()
        #expect(try await self.call("GET", harness.urls[0] + "/api/events?token=\(hs)").status == 401)
        // Nor does an ES256 token from another key.
        let other = try await TokenMinter.mint(
            privateKeyPEM: ES256PrivateKey().pemRepresentation,
            subject: "7",
            channels: nil,
            expiresIn: 600
        )
        #expect(try await self.call("GET", harness.urls[0] + "/api/events?token=\(other)").status == 401)
        await harness.stop()
    }

    @Test func publishingAndAdminRoutesNeedTheirCredentials() async throws {
        let harness = try await self.secured()
        let url = harness.urls[0]
        let body = #"{"broadcast":true,"event":"hello"}"#
        #expect(try await self.call("POST", url + "/api/sse/notify", body: body).status == 401)
        let wrong = [("Authorization", "Bearer nope")]
        #expect(try await self.call("POST", url + "/api/sse/notify", body: body, headers: wrong).status == 401)
        #expect(try await self.publish(harness, body) == 200)
        let publisher = try await self.token(publish: true)
        let withToken = [("Authorization", "Bearer \(publisher)")]
        #expect(try await self.call("POST", url + "/api/sse/notify", body: body, headers: withToken).status == 200)
        let subscriber = [("Authorization", "Bearer \(try await self.token())")]
        #expect(try await self.call("POST", url + "/api/sse/notify", body: body, headers: subscriber).status == 403)
        // The admin key is not a publisher key.
        let admin = [("Authorization", "Bearer \(Self.adminKey)")]
        #expect(try await self.call("POST", url + "/api/sse/notify", body: body, headers: admin).status == 401)

        for path in ["/api/sse/metrics", "/api/sse/clients", "/api/sse/clients/alice"] {
            #expect(try await self.call("GET", url + path).status == 401, "\(path)")
            #expect(try await self.call("GET", url + path, headers: subscriber).status == 403, "\(path)")
        }
        #expect(try await self.call("GET", url + "/api/sse/metrics", headers: admin).status == 200)
        #expect(try await self.call("GET", url + "/api/sse/clients", headers: admin).status == 200)
        let adminToken = [("Authorization", "Bearer \(try await self.token(admin: true))")]
        #expect(try await self.call("GET", url + "/api/sse/clients", headers: adminToken).status == 200)
        let ready = try await self.call("GET", url + "/readyz")
        #expect(ready.json["auth"] as? String == "on")
        await harness.stop()
    }

    @Test func anonymousModeIsTheDefaultAndSaysSo() async throws {
        let harness = try await NodeHarness(nodes: 1, embedded: true)
        let ready = try await self.call("GET", harness.urls[0] + "/readyz")
        #expect(ready.json["auth"] as? String == "anonymous")
        #expect(try await harness.notify(0, #"{"broadcast":true}"#).status == 200)
        await harness.stop()
    }

    @Test func metricsCanLiveOnASeparateOperationsAddress() async throws {
        let opsPort = try RedisServerProcess.freePort()
        let harness = try await self.secured {
            $0.opsHost = "127.0.0.1"
            $0.opsPort = opsPort
        }
        let ops = "http://127.0.0.1:\(opsPort)"
        #expect(harness.nodes[0].operationsAddress?.port == opsPort)
        let metrics = try await self.call("GET", ops + "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.response.body.contains("fanfare_connections"))
        #expect(try await self.call("GET", ops + "/readyz").status == 200)
        #expect(try await self.call("GET", ops + "/healthz").status == 200)
        // The operations address serves nothing else, and the public port no /metrics.
        #expect(try await self.call("POST", ops + "/api/sse/notify", body: #"{"broadcast":true}"#).status == 404)
        #expect(try await self.call("GET", harness.urls[0] + "/metrics").status == 404)
        #expect(try await self.call("GET", harness.urls[0] + "/healthz").status == 200)
        await harness.stop()
    }

    @Test func corsReflectsAllowedOriginsOnly() async throws {
        let harness = try await self.secured {
            $0.corsOrigins = ["https://app.example.org", "*.example.com"]
        }
        let url = harness.urls[0] + "/readyz"
        for origin in ["https://app.example.org", "https://shop.example.com", "http://a.b.example.com:8443"] {
            let response = try await self.call("GET", url, headers: [("Origin", origin)]).response
            #expect(response.header("access-control-allow-origin") == origin)
            #expect(response.header("vary") == "Origin")
            #expect(response.header("access-control-allow-credentials") == "true")
        }
        for origin in ["https://evil.org", "https://example.com.evil.org", "https://app.example.org.evil", "null"] {
            let response = try await self.call("GET", url, headers: [("Origin", origin)]).response
            #expect(response.header("access-control-allow-origin") == nil, "\(origin)")
            #expect(response.header("access-control-allow-credentials") == nil)
        }
        let preflight = try await self.call(
            "OPTIONS",
            harness.urls[0] + "/api/sse/notify",
            headers: [("Origin", "https://shop.example.com"), ("Access-Control-Request-Method", "POST")]
        )
        #expect(preflight.status == 204)
        #expect(preflight.response.header("access-control-allow-methods")?.contains("POST") == true)
        #expect(preflight.response.header("access-control-allow-headers")?.contains("Authorization") == true)
        let refusedPreflight = try await self.call(
            "OPTIONS",
            harness.urls[0] + "/api/sse/notify",
            headers: [("Origin", "https://evil.org")]
        )
        #expect(refusedPreflight.response.header("access-control-allow-origin") == nil)
        #expect(refusedPreflight.response.header("access-control-allow-methods") == nil)
        await harness.stop()
    }
}
