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
    /// When set, a token's `aud` must name it.
    public var audience: String?
    /// When set, a token's `iss` must be it.
    public var issuer: String?
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
        corsAllowCredentials: Bool = false,
        audience: String? = nil,
        issuer: String? = nil
    ) {
        self.jwtSecret = jwtSecret
        self.jwtPublicKeyPEM = jwtPublicKeyPEM
        self.publisherKey = publisherKey
        self.adminKey = adminKey
        self.tokenCookie = tokenCookie
        self.leewaySeconds = leewaySeconds
        self.corsAllowCredentials = corsAllowCredentials
        self.audience = audience
        self.issuer = issuer
    }

    /// Tokens are checked when a secret or a public key is configured.
    public var verifiesTokens: Bool { self.jwtSecret != nil || self.jwtPublicKeyPEM != nil }

    /// Nothing configured: every route is open.
    public var isAnonymous: Bool { !self.verifiesTokens && self.publisherKey == nil && self.adminKey == nil }
}
