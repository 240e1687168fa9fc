internal import FanfareAPI
internal import Foundation
internal import JWTKit
internal import NIOHTTP1

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
                throw FanfareError(
                    .invalidConfiguration,
                    "the JWT public key is neither an ES256 (P-256) nor an RSA PEM key"
                )
            }
        }
        self.keys = keys
    }

    /// HS256 secrets shorter than the hash (32 bytes) are refused: they are guessable.
    static func checkSecret(_ secret: String) throws {
        guard secret.utf8.count >= 32 else {
            throw FanfareError(
                .invalidConfiguration,
                "the JWT secret must be at least 32 bytes (try: openssl rand -hex 32)"
            )
        }
    }

    /// Routes that need no credential of their kind.
    var streamsAreOpen: Bool { self.keys == nil }
    var publishIsOpen: Bool { self.keys == nil && self.security.publisherKey == nil }
    var adminIsOpen: Bool { self.keys == nil && self.security.adminKey == nil }

    /// The mode as `/readyz` and the start-up log report it.
    var access: ReadinessAnswer.Access {
        ReadinessAnswer.Access(
            subscribe: self.streamsAreOpen ? "open" : "token",
            publish: self.publishIsOpen ? "open" : "credential",
            admin: self.adminIsOpen ? "open" : "credential"
        )
    }

    /// A verified token's claims; 401 for anything else.
    func verify(_ token: String) async throws -> FanfareClaims {
        guard let keys = self.keys else { throw FanfareError(.unauthenticated, "tokens are not enabled on this node") }
        let claims: FanfareClaims
        do {
            claims = try await keys.verify(token, as: FanfareClaims.self, iteratingKeys: true)
        } catch {
            throw FanfareError(.unauthenticated, "invalid token")
        }
        let leeway = TimeInterval(self.security.leewaySeconds)
        do {
            try claims.exp.verifyNotExpired(currentDate: Date().addingTimeInterval(-leeway))
        } catch {
            throw FanfareError(.unauthenticated, "the token has expired")
        }
        if let audience = self.security.audience, claims.aud?.value.contains(audience) != true {
            throw FanfareError(.unauthenticated, "the token is not for this audience (aud)")
        }
        if let issuer = self.security.issuer, claims.iss?.value != issuer {
            throw FanfareError(.unauthenticated, "the token's issuer (iss) is not accepted")
        }
        if let nbf = claims.nbf {
            do {
                try nbf.verifyNotBefore(currentDate: Date().addingTimeInterval(leeway))
            } catch {
                throw FanfareError(.unauthenticated, "the token is not valid yet")
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
                .unauthenticated,
                "a subscriber token is required (token=, Authorization: Bearer, or cookie)"
            )
        }
        // The admin credential follows any channel (presence: channels among them), as no user.
        if let key = self.security.adminKey, Self.equal(token, key) { return Grant(userID: nil, patterns: ["*"]) }
        let claims = try await self.verify(token)
        guard let subject = claims.sub?.value, ChannelName.isValidID(subject) else {
            throw FanfareError(.unauthenticated, "the token's sub must be a valid user id")
        }
        // The stream ends when the token would no longer be accepted.
        let expires = claims.exp.value.addingTimeInterval(TimeInterval(self.security.leewaySeconds))
        // An admin token follows any channel too, as no user.
        if claims.admin == true { return Grant(userID: nil, patterns: ["*"], expires: expires) }
        return Grant(userID: subject, patterns: claims.channels ?? [], expires: expires)
    }

    /// Who may read a channel's history: anyone when streams are open (any stream could
    /// replay it); else the publisher or admin credential, or a publish or admin token
    /// (`nil`: every channel), or a subscriber token, whose grant says which channels.
    func historyGrant(_ request: HTTPRequest) async throws -> Grant? {
        if self.streamsAreOpen { return nil }
        if let bearer = Self.bearer(request.headers) {
            if let key = self.security.publisherKey, Self.equal(bearer, key) { return nil }
            if let key = self.security.adminKey, Self.equal(bearer, key) { return nil }
        }
        guard let token = self.subscriberToken(request) else {
            throw FanfareError(
                .unauthenticated,
                "reading history needs the publisher or admin credential, or a token that grants the channel"
            )
        }
        let claims = try await self.verify(token)
        if claims.admin == true || claims.publish == true { return nil }
        guard let subject = claims.sub?.value, ChannelName.isValidID(subject) else {
            throw FanfareError(.unauthenticated, "the token's sub must be a valid user id")
        }
        return Grant(userID: subject, patterns: claims.channels ?? [], expires: claims.exp.value)
    }

    /// Checks a publisher; returns the identity publish rates are counted by.
    func authorizePublish(_ request: HTTPRequest, address: String) async throws -> String {
        if self.publishIsOpen { return "address:\(address)" }
        guard let bearer = Self.bearer(request.headers) else {
            throw FanfareError(.unauthenticated, "publishing needs Authorization: Bearer <publisher key or token>")
        }
        if let key = self.security.publisherKey, Self.equal(bearer, key) { return "publisher-key" }
        guard self.keys != nil else { throw FanfareError(.unauthenticated, "invalid publisher key") }
        let claims = try await self.verify(bearer)
        guard claims.publish == true else { throw FanfareError(.forbidden, "this token may not publish") }
        return "token:\(claims.sub?.value ?? "?")"
    }

    /// Checks an admin credential.
    func authorizeAdmin(_ request: HTTPRequest) async throws {
        if self.adminIsOpen { return }
        guard let bearer = Self.bearer(request.headers) else {
            throw FanfareError(.unauthenticated, "this route needs Authorization: Bearer <admin key or token>")
        }
        if let key = self.security.adminKey, Self.equal(bearer, key) { return }
        guard self.keys != nil else { throw FanfareError(.unauthenticated, "invalid admin key") }
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
