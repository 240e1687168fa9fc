internal import Foundation
internal import JWTKit
public import NIOCore
internal import NIOHTTP1

/// Who may subscribe, publish and administer. With nothing configured the node runs in
/// anonymous development mode: every route is open, and the node says so.
public struct SecurityConfiguration: Sendable {
    /// HS256 secret for subscriber (and publisher/admin) tokens.
    public var jwtSecret: String?
    /// PEM public key (ES256 or RS256) for tokens signed elsewhere.
    public var jwtPublicKeyPEM: String?
    /// `Authorization: Bearer <key>` that may publish.
    public var publisherKey: String?
    /// `Authorization: Bearer <key>` for counts, client lists and the admin page.
    public var adminKey: String?
    /// Cookie a browser may carry its subscriber token in.
    public var tokenCookie: String
    /// Allowed clock difference when checking `exp` and `nbf`.
    public var leewaySeconds: Int
    /// Send `Access-Control-Allow-Credentials: true` to allowed origins.
    public var corsAllowCredentials: Bool

    public init(
        jwtSecret: String? = nil,
        jwtPublicKeyPEM: String? = nil,
        publisherKey: String? = nil,
        adminKey: String? = nil,
        tokenCookie: String = "fanfare_token",
        leewaySeconds: Int = 10,
        corsAllowCredentials: Bool = false
    ) {
        self.jwtSecret = jwtSecret
        self.jwtPublicKeyPEM = jwtPublicKeyPEM
        self.publisherKey = publisherKey
        self.adminKey = adminKey
        self.tokenCookie = tokenCookie
        self.leewaySeconds = leewaySeconds
        self.corsAllowCredentials = corsAllowCredentials
    }

    /// Tokens are checked when a secret or a public key is configured.
    public var verifiesTokens: Bool { self.jwtSecret != nil || self.jwtPublicKeyPEM != nil }

    /// Nothing configured: every route is open.
    public var isAnonymous: Bool { !self.verifiesTokens && self.publisherKey == nil && self.adminKey == nil }
}

/// Bounds on what one client, address, node or credential may use. 0 turns a bound off.
public struct LimitsConfiguration: Sendable {
    /// Open streams per client id on one node.
    public var connectionsPerClient: Int
    /// Open streams per client address on one node (behind a proxy see
    /// ``trustForwardedFor``).
    public var connectionsPerIP: Int
    /// Open streams on one node.
    public var connectionsPerNode: Int
    /// Publishes per second per credential (publisher key, token subject, or address).
    public var publishesPerSecond: Int
    /// Largest request line plus headers.
    public var maxHeaderBytes: Int
    /// Longest request target (path and query).
    public var maxURIBytes: Int
    /// How long a connection may take to send a request's headers (slowloris), and how
    /// long an idle keep-alive connection stays open.
    public var headerTimeout: TimeAmount
    /// Take the client address from the last `X-Forwarded-For` entry (set it behind a
    /// proxy you run, such as the project's nginx).
    public var trustForwardedFor: Bool

    public init(
        connectionsPerClient: Int = 32,
        connectionsPerIP: Int = 0,
        connectionsPerNode: Int = 0,
        publishesPerSecond: Int = 0,
        maxHeaderBytes: Int = 16 * 1024,
        maxURIBytes: Int = 8 * 1024,
        headerTimeout: TimeAmount = .seconds(10),
        trustForwardedFor: Bool = false
    ) {
        self.connectionsPerClient = connectionsPerClient
        self.connectionsPerIP = connectionsPerIP
        self.connectionsPerNode = connectionsPerNode
        self.publishesPerSecond = publishesPerSecond
        self.maxHeaderBytes = maxHeaderBytes
        self.maxURIBytes = maxURIBytes
        self.headerTimeout = headerTimeout
        self.trustForwardedFor = trustForwardedFor
    }
}

/// The claims Fanfare reads from a token.
struct FanfareClaims: JWTPayload {
    var sub: SubjectClaim?
    var exp: ExpirationClaim
    var nbf: NotBeforeClaim?
    var iat: IssuedAtClaim?
    /// Channels the holder may join; a trailing `*` matches any suffix.
    var channels: [String]?
    /// May publish.
    var publish: Bool?
    /// May use the admin routes.
    var admin: Bool?

    /// Times are checked by ``Authenticator`` with leeway; the signature by the library.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// What a subscriber's token lets it join.
struct Grant: Sendable {
    var userID: String?
    var patterns: [String]

    /// Whether `channel` matches a granted name exactly or by a trailing-`*` prefix.
    func allows(_ channel: String) -> Bool {
        self.patterns.contains { pattern in
            if pattern.hasSuffix("*") { return channel.hasPrefix(pattern.dropLast()) }
            return pattern == channel
        }
    }
}

/// Checks credentials. Key comparisons take the same time whatever the input.
final class Authenticator: Sendable {
    let security: SecurityConfiguration
    private let keys: JWTKeyCollection?

    init(security: SecurityConfiguration) async throws {
        self.security = security
        guard security.verifiesTokens else {
            self.keys = nil
            return
        }
        let keys = JWTKeyCollection()
        if let secret = security.jwtSecret {
            try Self.checkSecret(secret)
            await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256, kid: "hs256")
        }
        if let pem = security.jwtPublicKeyPEM {
            if let key = try? ES256PublicKey(pem: pem) {
                await keys.add(ecdsa: key, kid: "es256")
            } else if let key = try? Insecure.RSA.PublicKey(pem: pem) {
                await keys.add(rsa: key, digestAlgorithm: .sha256, kid: "rs256")
            } else {
                throw FanfareError(.badRequest, "the JWT public key is neither an ES256 (P-256) nor an RSA PEM key")
            }
        }
        self.keys = keys
    }

    /// HS256 secrets shorter than the hash (32 bytes) are refused: they are guessable.
    static func checkSecret(_ secret: String) throws {
        guard secret.utf8.count >= 32 else {
            throw FanfareError(.badRequest, "the JWT secret must be at least 32 bytes (try: openssl rand -hex 32)")
        }
    }

    /// Routes that need no credential of their kind.
    var streamsAreOpen: Bool { self.keys == nil }
    var publishIsOpen: Bool { self.keys == nil && self.security.publisherKey == nil }
    var adminIsOpen: Bool { self.keys == nil && self.security.adminKey == nil }

    /// The mode as `/readyz` and the start-up log report it.
    var summary: [String: String] {
        [
            "subscribe": self.streamsAreOpen ? "open" : "token",
            "publish": self.publishIsOpen ? "open" : "credential",
            "admin": self.adminIsOpen ? "open" : "credential",
        ]
    }

    /// A verified token's claims; 401 for anything else.
    func verify(_ token: String) async throws -> FanfareClaims {
        guard let keys = self.keys else { throw FanfareError(.unauthorized, "tokens are not enabled on this node") }
        let claims: FanfareClaims
        do {
            claims = try await keys.verify(token, as: FanfareClaims.self, iteratingKeys: true)
        } catch {
            throw FanfareError(.unauthorized, "invalid token")
        }
        let leeway = TimeInterval(self.security.leewaySeconds)
        do {
            try claims.exp.verifyNotExpired(currentDate: Date().addingTimeInterval(-leeway))
        } catch {
            throw FanfareError(.unauthorized, "the token has expired")
        }
        if let nbf = claims.nbf {
            do {
                try nbf.verifyNotBefore(currentDate: Date().addingTimeInterval(leeway))
            } catch {
                throw FanfareError(.unauthorized, "the token is not valid yet")
            }
        }
        return claims
    }

    /// The subscriber token of a request: `?token=`, `Authorization: Bearer`, or the cookie.
    func subscriberToken(_ request: HTTPRequest) -> String? {
        if let token = request.query["token"], !token.isEmpty { return token }
        if let bearer = Self.bearer(request.headers) { return bearer }
        for header in request.headers[canonicalForm: "cookie"] {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0].trimmingWhitespace() == self.security.tokenCookie {
                    return parts[1].trimmingWhitespace()
                }
            }
        }
        return nil
    }

    /// What a subscriber may join, or `nil` when streams are open.
    func grant(for request: HTTPRequest) async throws -> Grant? {
        guard !self.streamsAreOpen else { return nil }
        guard let token = self.subscriberToken(request) else {
            throw FanfareError(
                .unauthorized,
                "a subscriber token is required (token=, Authorization: Bearer, or cookie)"
            )
        }
        let claims = try await self.verify(token)
        guard let subject = claims.sub?.value, ChannelName.isValidID(subject) else {
            throw FanfareError(.unauthorized, "the token's sub must be a valid user id")
        }
        return Grant(userID: subject, patterns: claims.channels ?? [])
    }

    /// Checks a publisher; returns the identity publish rates are counted by.
    func authorizePublish(_ request: HTTPRequest, address: String) async throws -> String {
        if self.publishIsOpen { return "address:\(address)" }
        guard let bearer = Self.bearer(request.headers) else {
            throw FanfareError(.unauthorized, "publishing needs Authorization: Bearer <publisher key or token>")
        }
        if let key = self.security.publisherKey, Self.equal(bearer, key) { return "publisher-key" }
        guard self.keys != nil else { throw FanfareError(.unauthorized, "invalid publisher key") }
        let claims = try await self.verify(bearer)
        guard claims.publish == true else { throw FanfareError(.forbidden, "this token may not publish") }
        return "token:\(claims.sub?.value ?? "?")"
    }

    /// Checks an admin credential.
    func authorizeAdmin(_ request: HTTPRequest) async throws {
        if self.adminIsOpen { return }
        guard let bearer = Self.bearer(request.headers) else {
            throw FanfareError(.unauthorized, "this route needs Authorization: Bearer <admin key or token>")
        }
        if let key = self.security.adminKey, Self.equal(bearer, key) { return }
        guard self.keys != nil else { throw FanfareError(.unauthorized, "invalid admin key") }
        let claims = try await self.verify(bearer)
        guard claims.admin == true else { throw FanfareError(.forbidden, "this token is not an admin token") }
    }

    static func bearer(_ headers: HTTPHeaders) -> String? {
        guard let value = headers.first(name: "authorization") else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingWhitespace()
        return token.isEmpty ? nil : token
    }

    /// Compares in time that depends only on the lengths.
    static func equal(_ lhs: String, _ rhs: String) -> Bool {
        let left = Array(lhs.utf8)
        let right = Array(rhs.utf8)
        var difference = UInt8(left.count == right.count ? 0 : 1)
        for index in 0..<max(left.count, right.count) {
            let a = index < left.count ? left[index] : 0
            let b = index < right.count ? right[index] : 0
            difference |= a ^ b
        }
        return difference == 0
    }
}

/// Signs subscriber (and publisher/admin) tokens, for `fanfare token` and tests.
public enum TokenMinter {
    /// A signed token. With `secret` HS256; with `privateKeyPEM` ES256 (P-256) or RS256.
    /// `expiresIn` and `notBeforeIn` are seconds from now.
    public static func mint(
        secret: String? = nil,
        privateKeyPEM: String? = nil,
        subject: String?,
        channels: [String]?,
        expiresIn: Double,
        notBeforeIn: Double? = nil,
        publish: Bool = false,
        admin: Bool = false
    ) async throws -> String {
        let keys = JWTKeyCollection()
        if let secret {
            try Authenticator.checkSecret(secret)
            await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        } else if let pem = privateKeyPEM {
            if let key = try? ES256PrivateKey(pem: pem) {
                await keys.add(ecdsa: key)
            } else if let key = try? Insecure.RSA.PrivateKey(pem: pem) {
                await keys.add(rsa: key, digestAlgorithm: .sha256)
            } else {
                throw FanfareError(.badRequest, "the private key is neither an ES256 (P-256) nor an RSA PEM key")
            }
        } else {
            throw FanfareError(.badRequest, "give a secret or a private key")
        }
        let now = Date()
        let claims = FanfareClaims(
            sub: subject.map { SubjectClaim(value: $0) },
            exp: ExpirationClaim(value: now.addingTimeInterval(expiresIn)),
            nbf: notBeforeIn.map { NotBeforeClaim(value: now.addingTimeInterval($0)) },
            iat: IssuedAtClaim(value: now),
            channels: channels,
            publish: publish ? true : nil,
            admin: admin ? true : nil
        )
        return try await keys.sign(claims)
    }
}
