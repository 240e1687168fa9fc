internal import Foundation
internal import JWTKit

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
        admin: Bool = false,
        audience: String? = nil,
        issuer: String? = nil
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
                throw FanfareError(.invalidInput, "the private key is neither an ES256 (P-256) nor an RSA PEM key")
            }
        } else {
            throw FanfareError(.invalidInput, "give a secret or a private key")
        }
        let now = Date()
        let claims = FanfareClaims(
            sub: subject.map { SubjectClaim(value: $0) },
            exp: ExpirationClaim(value: now.addingTimeInterval(expiresIn)),
            nbf: notBeforeIn.map { NotBeforeClaim(value: now.addingTimeInterval($0)) },
            iat: IssuedAtClaim(value: now),
            aud: audience.map { AudienceClaim(value: [$0]) },
            iss: issuer.map { IssuerClaim(value: $0) },
            channels: channels,
            publish: publish ? true : nil,
            admin: admin ? true : nil
        )
        return try await keys.sign(claims)
    }
}
