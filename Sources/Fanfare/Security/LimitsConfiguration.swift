public import NIOCore

/// Bounds on what one client, address, node or credential may use. 0 turns a bound off.
public struct LimitsConfiguration: Sendable {
    /// Open streams per client id on one node.
    public var connectionsPerClient: Int
    /// Open streams per user id across the whole cluster, counted atomically in Redis
    /// (in memory when embedded); a stream without a user is not counted.
    public var connectionsPerUser: Int
    /// What a stream over ``connectionsPerUser`` gets: refused, or the user's oldest ends.
    public var userLimitPolicy: UserLimitPolicy
    /// Open streams per client address on one node (behind a proxy see
    /// ``trustForwardedFor``).
    public var connectionsPerIP: Int
    /// Open streams on one node.
    public var connectionsPerNode: Int
    /// Publishes per second per credential (publisher key, token subject, or address).
    public var publishesPerSecond: Int
    /// Channels one stream may ask for with `?channels=` (its client, user and broadcast
    /// channels are not counted): each is a Redis subscription and a count the registry
    /// keeps. At least 1.
    public var channelsPerStream: Int
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
        connectionsPerUser: Int = 0,
        userLimitPolicy: UserLimitPolicy = .refuse,
        connectionsPerIP: Int = 0,
        connectionsPerNode: Int = 0,
        publishesPerSecond: Int = 0,
        channelsPerStream: Int = 64,
        maxHeaderBytes: Int = 16 * 1024,
        maxURIBytes: Int = 8 * 1024,
        headerTimeout: TimeAmount = .seconds(10),
        trustForwardedFor: Bool = false
    ) {
        self.connectionsPerClient = connectionsPerClient
        self.connectionsPerUser = connectionsPerUser
        self.userLimitPolicy = userLimitPolicy
        self.connectionsPerIP = connectionsPerIP
        self.connectionsPerNode = connectionsPerNode
        self.publishesPerSecond = publishesPerSecond
        self.channelsPerStream = max(1, channelsPerStream)
        self.maxHeaderBytes = maxHeaderBytes
        self.maxURIBytes = maxURIBytes
        self.headerTimeout = headerTimeout
        self.trustForwardedFor = trustForwardedFor
    }
}
