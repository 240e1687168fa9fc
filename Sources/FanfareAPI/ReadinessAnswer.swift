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

    /// The replicas publishes wait for, and what the node found: with fewer, its publishes
    /// are stored but not confirmed (503 after the ack timeout).
    public struct Replicas: Codable, Sendable, Hashable {
        /// `--replica-acks`.
        public var wanted: Int
        /// The fewest replicas any primary has; absent before the first check.
        public var found: Int?
        /// What that means for the node's publishes, in a sentence.
        public var effect: String

        public init(wanted: Int, found: Int?, effect: String) {
            self.wanted = wanted
            self.found = found
            self.effect = effect
        }
    }

    /// Not draining, and (in a cluster) Redis reachable and delivery proven.
    public var ready: Bool
    /// Why the node is not ready, when it is not.
    public var reason: String?
    /// What the delivery check finds: `off` (embedded), `unproven` (no probe back yet),
    /// `ok` or `stalled`.
    public var delivery: String?
    /// The node's id.
    public var node: String
    /// `embedded` or `cluster`.
    public var mode: String
    /// The node is draining after SIGTERM.
    public var draining: Bool
    /// `anonymous` (nothing configured, every route open) or `on`.
    public var auth: String
    public var access: Access
    /// With `--replica-acks` above 0.
    public var replicas: Replicas?

    public init(
        ready: Bool,
        reason: String? = nil,
        delivery: String? = nil,
        node: String,
        mode: String,
        draining: Bool,
        auth: String,
        access: Access,
        replicas: Replicas? = nil
    ) {
        self.ready = ready
        self.reason = reason
        self.delivery = delivery
        self.node = node
        self.mode = mode
        self.draining = draining
        self.auth = auth
        self.access = access
        self.replicas = replicas
    }
}
