/// The answer of `GET /readyz` (status 200 when ready, 503 when not).
public struct ReadinessAnswer: Codable, Sendable, Hashable {
    /// Who may do what without a credential.
    public struct Access: Codable, Sendable, Hashable {
        /// `open` or `token`.
        public var subscribe: String
        /// `open` or `credential`.
        public var publish: String
        /// `open` or `credential`.
        public var admin: String

        public init(subscribe: String, publish: String, admin: String) {
            self.subscribe = subscribe
            self.publish = publish
            self.admin = admin
        }
    }

    /// Not draining, and (in a cluster) Redis reachable.
    public var ready: Bool
    /// The node's id.
    public var node: String
    /// `embedded` or `cluster`.
    public var mode: String
    /// The node is draining after SIGTERM.
    public var draining: Bool
    /// `anonymous` (nothing configured, every route open) or `on`.
    public var auth: String
    public var access: Access

    public init(ready: Bool, node: String, mode: String, draining: Bool, auth: String, access: Access) {
        self.ready = ready
        self.node = node
        self.mode = mode
        self.draining = draining
        self.auth = auth
        self.access = access
    }
}
