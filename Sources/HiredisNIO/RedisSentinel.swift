internal import NIOCore

/// A Redis server's host and port (a sentinel, a master, a cluster node).
public struct RedisAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String {
        self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
    }
}

extension RedisAddress {
    /// Whether `channel` is connected to this address (an IP address and port); a host
    /// name never matches.
    func isRemoteEnd(of channel: any Channel) -> Bool {
        guard let remote = channel.remoteAddress else { return false }
        return remote.port == self.port && remote.ipAddress == self.host
    }
}

/// Where to ask for a Redis master that Sentinel watches (and fails over).
///
/// A connection to a ``RedisConfiguration`` with a sentinel asks each sentinel in turn
/// for the master's address (`SENTINEL get-master-addr-by-name`), connects there with the
/// configuration's credentials and database, and checks with `ROLE` that the server is
/// the master; a replica (a failover in progress, or an old master that came back) is
/// refused like a connection that failed, so the caller's reconnect asks again. After a
/// failover Sentinel closes the clients of the servers it reconfigured, and a write that
/// reaches a replica anyway gets `READONLY` and closes its connection, so every user of
/// the configuration finds the new master on its next connect. A master that is cut off
/// but not dead keeps its sockets: ``RedisSentinelWatcher`` hears the sentinels announce
/// the new one, so its owner can reconnect at once.
public struct RedisSentinel: Sendable, Hashable {
    public typealias Address = RedisAddress

    /// The sentinels, asked in this order.
    public var sentinels: [Address]
    /// The name the sentinels monitor the master by.
    public var masterName: String
    /// The sentinels' own credentials (`requirepass` of a sentinel), if any.
    public var username: String?
    public var password: String?

    public static let defaultPort = 26_379

    public init(sentinels: [Address], masterName: String, username: String? = nil, password: String? = nil) {
        self.sentinels = sentinels
        self.masterName = masterName
        self.username = username
        self.password = password
    }

    /// A configuration for talking to one sentinel: its credentials, database 0 (a
    /// sentinel has no SELECT), a short connect timeout (a dead sentinel must not hold up
    /// asking the next one).
    func configuration(of address: Address, from master: RedisConfiguration) -> RedisConfiguration {
        var configuration = RedisConfiguration(
            host: address.host,
            port: address.port,
            username: self.username,
            password: self.password,
            database: 0,
            connectTimeout: min(master.connectTimeout, .seconds(1)),
            commandTimeout: master.commandTimeout.map { min($0, .seconds(2)) } ?? .seconds(2)
        )
        // With TLS, the sentinels speak it too, with the same settings.
        configuration.tls = master.tls
        return configuration
    }
}

extension RedisConfiguration {
    /// Reads `redis-sentinel://[[user]:password@]host[:port][,host[:port]…]/master-name[/database]`
    /// `[?sentinelUsername=…&sentinelPassword=…]`.
    mutating func readSentinelURL(_ url: String) throws {
        var rest = Substring(url).dropFirst("redis-sentinel://".count)
        var query = Substring("")
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        guard let slash = rest.firstIndex(of: "/") else {
            throw RedisClientError(
                .invalidURL,
                "a Sentinel URL names its master: redis-sentinel://host:port,host:port/<master-name>, got '\(Self.redacted(url))'"
            )
        }
        let path = rest[rest.index(after: slash)...].split(separator: "/", omittingEmptySubsequences: false)
        rest = rest[..<slash]
        rest = try self.readUserInfo(rest)
        let sentinels = try rest.split(separator: ",", omittingEmptySubsequences: false).map { text in
            guard !text.isEmpty else {
                throw RedisClientError(.invalidURL, "an empty sentinel address in '\(Self.redacted(url))'")
            }
            let (host, port) = try Self.hostAndPort(text, defaultPort: RedisSentinel.defaultPort, url: url)
            return RedisSentinel.Address(host: host, port: port)
        }
        let name = try path.first.map { try Self.percentDecoded($0) } ?? ""
        guard !name.isEmpty, path.count <= 2 else {
            throw RedisClientError(
                .invalidURL,
                "a Sentinel URL's path is /<master-name> or /<master-name>/<database>, got '\(Self.redacted(url))'"
            )
        }
        if path.count == 2 { self.database = try Self.database(path[1], url: url) }
        var sentinel = RedisSentinel(sentinels: sentinels, masterName: name)
        for parameter in query.split(separator: "&") {
            let parts = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let value = try parts.count == 2 ? Self.percentDecoded(parts[1]) : ""
            switch parts[0] {
            case "sentinelUsername": sentinel.username = value.isEmpty ? nil : value
            case "sentinelPassword": sentinel.password = value
            default:
                throw RedisClientError(
                    .invalidURL,
                    "unknown parameter '\(parts[0])' in '\(Self.redacted(url))' (known: sentinelUsername, sentinelPassword)"
                )
            }
        }
        self.sentinel = sentinel
        self.host = sentinels[0].host
        self.port = sentinels[0].port
    }
}
