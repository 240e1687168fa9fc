public import NIOCore

/// Where a Redis server is and how to talk to it.
public struct RedisConfiguration: Sendable, Hashable {
    public var host: String
    public var port: Int
    public var username: String?
    public var password: String?
    public var database: Int
    /// How long the TCP connect may take.
    public var connectTimeout: TimeAmount
    /// How long a reply may take once a command is written; `nil` waits forever.
    /// When it passes, every pending command fails and the connection closes, since
    /// later replies could no longer be matched to their commands.
    public var commandTimeout: TimeAmount?
    /// When set, `host` and `port` are not used: every connection first asks these
    /// sentinels where the master is, and checks with ROLE that it is the master.
    public var sentinel: RedisSentinel?
    /// When set, the server is a Redis Cluster and these are the nodes to ask for its
    /// slot map (any of them will do); `host` and `port` are the first. Only a
    /// ``RedisClient`` routes by slot: a lone ``RedisConnection`` talks to `host` only.
    public var clusterSeeds: [RedisAddress]?
    /// TLS for every connection (to the servers, the sentinels and the cluster's nodes);
    /// `nil`: plain TCP. `rediss://`, `rediss-sentinel://` and `rediss-cluster://` turn it
    /// on with certificates checked against the system's roots.
    public var tls: RedisTLS?

    public init(
        host: String = "127.0.0.1",
        port: Int = 6379,
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        connectTimeout: TimeAmount = .seconds(5),
        commandTimeout: TimeAmount? = .seconds(5)
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
    }

    /// Reads `redis://[[user]:password@]host[:port][/database]`, or
    /// `redis-sentinel://[[user]:password@]host[:port][,host[:port]…]/master-name[/database]`
    /// with `?sentinelUsername=` and `?sentinelPassword=` for the sentinels' own
    /// credentials (the ones before the hosts are the master's); see ``RedisSentinel``.
    ///
    /// User and password may be percent-encoded; an IPv6 host goes in brackets. Each
    /// scheme has a TLS form with a second `s`: `rediss://`, `rediss-sentinel://`,
    /// `rediss-cluster://` (``tls``).
    public init(url: String) throws {
        self.init()
        var url = url
        for scheme in ["rediss://", "rediss-sentinel://", "rediss-cluster://"] where url.hasPrefix(scheme) {
            self.tls = RedisTLS()
            url = "redis" + url.dropFirst("rediss".count)
        }
        try Self.checkRawDelimiters(url)
        var rest = Substring(url)
        if rest.hasPrefix("redis-sentinel://") {
            try self.readSentinelURL(url)
            return
        }
        if rest.hasPrefix("redis-cluster://") {
            try self.readClusterURL(url)
            return
        }
        guard rest.hasPrefix("redis://") else {
            throw RedisClientError(
                .invalidURL,
                "a Redis URL starts with redis://, redis-sentinel:// or redis-cluster:// (or rediss… for TLS), got '\(Self.redacted(url))'"
            )
        }
        rest = rest.dropFirst("redis://".count)
        if let end = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) {
            rest = rest[..<end]
        }
        var path = Substring("")
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        rest = try self.readUserInfo(rest)
        (self.host, self.port) = try Self.hostAndPort(rest, defaultPort: self.port, url: url)
        if !path.isEmpty {
            self.database = try Self.database(path, url: url)
        }
    }

    /// Reads `redis-cluster://[[user]:password@]host[:port][,host[:port]…]`: seeds of one
    /// cluster, which has only database 0.
    mutating func readClusterURL(_ url: String) throws {
        var rest = Substring(url).dropFirst("redis-cluster://".count)
        if let end = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) {
            guard rest[end] == "#" || rest[rest.index(after: end)...].isEmpty else {
                throw RedisClientError(.invalidURL, "a Cluster URL takes no parameters: '\(Self.redacted(url))'")
            }
            rest = rest[..<end]
        }
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            guard path.isEmpty || path == "0" else {
                throw RedisClientError(
                    .invalidURL,
                    "a Redis Cluster has only database 0, got '/\(path)' in '\(Self.redacted(url))'"
                )
            }
            rest = rest[..<slash]
        }
        rest = try self.readUserInfo(rest)
        let seeds = try rest.split(separator: ",", omittingEmptySubsequences: false).map { text in
            guard !text.isEmpty else {
                throw RedisClientError(.invalidURL, "an empty cluster node address in '\(Self.redacted(url))'")
            }
            let (host, port) = try Self.hostAndPort(text, defaultPort: 6379, url: url)
            return RedisAddress(host: host, port: port)
        }
        self.clusterSeeds = seeds
        self.host = seeds[0].host
        self.port = seeds[0].port
    }

    /// This configuration aimed at one server of a cluster (or the master Sentinel named):
    /// the same credentials and timeouts, no seeds, no sentinel.
    public func server(_ address: RedisAddress) -> RedisConfiguration {
        var server = self
        server.sentinel = nil
        server.clusterSeeds = nil
        server.host = address.host
        server.port = address.port
        return server
    }

    /// Takes `[user]:password@` off the front of `rest` into the credentials.
    mutating func readUserInfo(_ rest: Substring) throws -> Substring {
        guard let at = rest.lastIndex(of: "@") else { return rest }
        let userInfo = rest[..<at]
        if let colon = userInfo.firstIndex(of: ":") {
            let user = try Self.percentDecoded(userInfo[..<colon])
            self.username = user.isEmpty ? nil : user
            self.password = try Self.percentDecoded(userInfo[userInfo.index(after: colon)...])
        } else if !userInfo.isEmpty {
            // `redis://secret@host` is the common shorthand for a password alone.
            self.password = try Self.percentDecoded(userInfo)
        }
        return rest[rest.index(after: at)...]
    }

    /// `host`, `host:port`, `[v6]` or `[v6]:port`; an empty host is the loopback.
    static func hostAndPort(_ text: Substring, defaultPort: Int, url: String) throws -> (String, Int) {
        var host: String
        var portText: Substring? = nil
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw RedisClientError(.invalidURL, "unclosed '[' in IPv6 host of '\(Self.redacted(url))'")
            }
            host = String(text[text.index(after: text.startIndex)..<close])
            let after = text[text.index(after: close)...]
            if after.hasPrefix(":") {
                portText = after.dropFirst()
            } else if !after.isEmpty {
                throw RedisClientError(.invalidURL, "unexpected text after host in '\(Self.redacted(url))'")
            }
        } else if let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon])
            portText = text[text.index(after: colon)...]
        } else {
            host = String(text)
        }
        if host.isEmpty { host = "127.0.0.1" }
        guard let portText else { return (host, defaultPort) }
        guard let port = Int(portText), (1...65535).contains(port) else {
            throw RedisClientError(.invalidURL, "bad port '\(portText)' in '\(Self.redacted(url))'")
        }
        return (host, port)
    }

    static func database(_ text: Substring, url: String) throws -> Int {
        guard let database = Int(text), database >= 0 else {
            throw RedisClientError(.invalidURL, "bad database '\(text)' in '\(Self.redacted(url))'")
        }
        return database
    }

    /// A raw `/`, `?` or `#` in a password ends the host part early: what follows (the
    /// rest of the password, the `@`, the host) would be read as a path, a query or a
    /// fragment, and the URL would name another server, without a password. Refused with
    /// a sentence that repeats nothing of the URL.
    static func checkRawDelimiters(_ url: String) throws {
        guard let schemeEnd = url.firstRange(of: "://")?.upperBound else { return }
        let rest = Self.withoutSentinelQuery(url[schemeEnd...])
        guard let end = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }),
            rest[end...].contains("@")
        else { return }
        throw RedisClientError(
            .invalidURL,
            "the Redis URL has an '@' after a '/', '?' or '#': a user name or password holding those characters "
                + "must have them percent-encoded (%2F, %3F, %23)"
        )
    }

    /// A Sentinel URL's query of its own parameters (whose values may hold an `@`) cut off.
    private static func withoutSentinelQuery(_ rest: Substring) -> Substring {
        guard let mark = rest.firstIndex(of: "?") else { return rest }
        let query = rest[rest.index(after: mark)...].prefix { $0 != "#" }
        let known = query.split(separator: "&").allSatisfy {
            $0.hasPrefix("sentinelUsername=") || $0.hasPrefix("sentinelPassword=")
        }
        return known ? rest[..<mark] : rest
    }

    /// `url` for a message: everything between the scheme and the last `@` (user name
    /// and password, whatever characters they hold) and a `sentinelPassword=` in the query
    /// become `***` (the user name stays when it is plain), so no error or log line repeats
    /// a credential.
    public static func redacted(_ url: String) -> String {
        var url = url
        if let query = url.firstIndex(of: "?") {
            let parameters = url[url.index(after: query)...].split(separator: "&", omittingEmptySubsequences: false)
            let shown = parameters.map { parameter in
                parameter.lowercased().hasPrefix("sentinelpassword=")
                    ? String(parameter.prefix { $0 != "=" }) + "=***" : String(parameter)
            }
            url = String(url[...query]) + shown.joined(separator: "&")
        }
        let start: String.Index = url.firstRange(of: "://")?.upperBound ?? url.startIndex
        let credentials = Self.withoutSentinelQuery(url[start...])
        guard let at = credentials.lastIndex(of: "@") else { return url }
        let userInfo: Substring = url[start..<at]
        var shown = "***"
        if let colon = userInfo.firstIndex(of: ":"),
            !userInfo[..<colon].contains(where: { $0 == "/" || $0 == "?" || $0 == "#" })
        {
            shown = String(userInfo[..<colon]) + ":***"
        }
        return String(url[..<start]) + shown + String(url[at...])
    }

    static func percentDecoded(_ text: Substring) throws -> String {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(Self.hexValue), let low = iterator.next().flatMap(Self.hexValue)
            else {
                throw RedisClientError(.invalidURL, "bad percent escape in credentials of the Redis URL")
            }
            bytes.append(high << 4 | low)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension RedisConfiguration: CustomStringConvertible {
    /// The URL without the password, safe for logs.
    public var description: String {
        let credentials = self.password == nil ? "" : "\(self.username ?? ""):***@"
        let scheme = self.tls == nil ? "redis" : "rediss"
        if let seeds = self.clusterSeeds {
            return "\(scheme)-cluster://\(credentials)\(seeds.map(\.description).joined(separator: ","))"
        }
        if let sentinel = self.sentinel {
            let hosts = sentinel.sentinels.map(\.description).joined(separator: ",")
            return "\(scheme)-sentinel://\(credentials)\(hosts)/\(sentinel.masterName)/\(self.database)"
        }
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return "\(scheme)://\(credentials)\(host):\(self.port)/\(self.database)"
    }
}
