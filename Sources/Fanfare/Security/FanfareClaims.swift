internal import JWTKit

/// The claims Fanfare reads from a token.
struct FanfareClaims: JWTPayload {
    var sub: SubjectClaim?
    var exp: ExpirationClaim
    var nbf: NotBeforeClaim?
    var iat: IssuedAtClaim?
    var aud: AudienceClaim?
    var iss: IssuerClaim?
    /// Channels the holder may join; a trailing `*` matches any suffix.
    var channels: [String]?
    /// May publish.
    var publish: Bool?
    /// May use the admin routes.
    var admin: Bool?

    /// Times are checked by ``Authenticator`` with leeway; the signature by the library.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
