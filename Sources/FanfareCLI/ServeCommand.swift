import ArgumentParser
import Fanfare
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run a node. Without a Redis URL it runs embedded: one node, in-memory bus."
    )

    @Option(help: "Address to bind (FANFARE_HOST, default 0.0.0.0).")
    var host: String?

    @Option(help: "Port to bind (FANFARE_PORT, default 8080).")
    var port: Int?

    @Option(help: "Redis URL redis://[user:password@]host:port/db (FANFARE_REDIS_URL; none = embedded).")
    var redis: String?

    @Option(name: .customLong("node-id"), help: "This node's id (FANFARE_NODE_ID, default generated).")
    var nodeID: String?

    @Option(
        help:
            "Prefix of every Redis key and channel; clusters sharing a Redis need distinct ones (FANFARE_REDIS_PREFIX, default fanfare)."
    )
    var redisPrefix: String?

    @Option(help: "Heartbeat interval in seconds (FANFARE_HEARTBEAT_SECONDS, default 15).")
    var heartbeatSeconds: Int?

    @Option(help: "Close a stream whose unsent bytes exceed this (FANFARE_SLOW_CONSUMER_BYTES, default 1048576).")
    var slowConsumerBytes: Int?

    @Option(help: "Events kept in the history log (FANFARE_HISTORY_SIZE, default 10000).")
    var historySize: Int?

    @Option(
        help: "Seconds events stay in the history log, 0 for no age limit (FANFARE_HISTORY_SECONDS, default 86400)."
    )
    var historySeconds: Int?

    @Option(
        name: .customLong("cors-origin"),
        help: "Allowed CORS origin, repeatable (FANFARE_CORS_ORIGINS, default *)."
    )
    var corsOrigins: [String] = []

    @Option(help: "Event loop threads (FANFARE_EVENT_LOOPS, default one per core).")
    var eventLoops: Int?

    @Option(
        help: "HS256 secret for tokens (FANFARE_JWT_SECRET, or a file: --jwt-secret-file, FANFARE_JWT_SECRET_FILE)."
    )
    var jwtSecret: String?

    @Option(help: "File holding the HS256 secret.")
    var jwtSecretFile: String?

    @Option(help: "PEM file of an ES256 or RS256 public key for tokens (FANFARE_JWT_PUBLIC_KEY).")
    var jwtPublicKey: String?

    @Option(help: "Bearer key that may publish (FANFARE_PUBLISHER_KEY, or FANFARE_PUBLISHER_KEY_FILE).")
    var publisherKey: String?

    @Option(help: "File holding the publisher key.")
    var publisherKeyFile: String?

    @Option(help: "Bearer key for counts, client lists and /admin (FANFARE_ADMIN_KEY, or FANFARE_ADMIN_KEY_FILE).")
    var adminKey: String?

    @Option(help: "File holding the admin key.")
    var adminKeyFile: String?

    @Option(help: "Cookie that may carry a subscriber token (FANFARE_TOKEN_COOKIE, default fanfare_token).")
    var tokenCookie: String?

    @Flag(help: "Send Access-Control-Allow-Credentials to allowed origins (FANFARE_CORS_CREDENTIALS=1).")
    var corsCredentials = false

    @Option(help: "Streams per client id per node, 0 = no bound (FANFARE_MAX_CONNECTIONS_PER_CLIENT, default 32).")
    var maxConnectionsPerClient: Int?

    @Option(help: "Streams per client address per node, 0 = no bound (FANFARE_MAX_CONNECTIONS_PER_IP, default 0).")
    var maxConnectionsPerIp: Int?

    @Option(help: "Streams per node, 0 = no bound (FANFARE_MAX_CONNECTIONS, default 0).")
    var maxConnections: Int?

    @Option(help: "Publishes per second per credential, 0 = no bound (FANFARE_PUBLISH_RATE, default 0).")
    var publishRate: Int?

    @Option(help: "Largest request body in bytes (FANFARE_MAX_BODY_BYTES, default 65536).")
    var maxBodyBytes: Int?

    @Option(help: "Largest request headers in bytes (FANFARE_MAX_HEADER_BYTES, default 16384).")
    var maxHeaderBytes: Int?

    @Option(help: "Seconds a connection may take to send its headers (FANFARE_HEADER_TIMEOUT_SECONDS, default 10).")
    var headerTimeoutSeconds: Int?

    @Flag(help: "Take client addresses from X-Forwarded-For, behind your own proxy (FANFARE_TRUST_FORWARDED_FOR=1).")
    var trustForwardedFor = false

    @Option(help: "Serve /metrics only on this host:port, e.g. 127.0.0.1:9100 (FANFARE_OPS_ADDRESS).")
    var opsAddress: String?

    @Option(help: "Longest graceful drain on SIGTERM, in seconds (FANFARE_DRAIN_SECONDS, default 10).")
    var drainSeconds: Int?

    @Option(
        help:
            "On drain, keep answering /readyz (false) and refusing new streams this long after the streams are gone, for health-checking load balancers (FANFARE_DRAIN_GRACE_SECONDS, default 0)."
    )
    var drainGraceSeconds: Int?

    @Option(
        help:
            "On drain, clients are told to retry after a random 0…N ms (FANFARE_DRAIN_RETRY_JITTER_MS, default 2000)."
    )
    var drainRetryJitterMs: Int?

    @Option(help: "Log level: trace, debug, info, notice, warning, error (FANFARE_LOG_LEVEL, default info).")
    var logLevel: String?

    func run() async throws {
        var configuration = FanfareConfiguration()
        configuration.host = setting(self.host, "FANFARE_HOST", default: "0.0.0.0") ?? "0.0.0.0"
        configuration.port = try self.number(self.port, "FANFARE_PORT") ?? 8080
        configuration.redisURL = setting(self.redis, "FANFARE_REDIS_URL")
        configuration.nodeID = setting(self.nodeID, "FANFARE_NODE_ID") ?? FanfareConfiguration.generatedNodeID()
        configuration.redisPrefix = setting(self.redisPrefix, "FANFARE_REDIS_PREFIX", default: "fanfare") ?? "fanfare"
        if let seconds = try self.number(self.heartbeatSeconds, "FANFARE_HEARTBEAT_SECONDS") {
            configuration.heartbeatInterval = .seconds(Int64(max(1, seconds)))
        }
        if let bytes = try self.number(self.slowConsumerBytes, "FANFARE_SLOW_CONSUMER_BYTES") {
            configuration.slowConsumerBytes = max(4096, bytes)
        }
        if let size = try self.number(self.historySize, "FANFARE_HISTORY_SIZE") {
            configuration.historyMaxLength = max(1, size)
        }
        if let seconds = try self.number(self.historySeconds, "FANFARE_HISTORY_SECONDS") {
            configuration.historyMaxAgeSeconds = max(0, seconds)
        }
        if !self.corsOrigins.isEmpty {
            configuration.corsOrigins = self.corsOrigins
        } else if let origins = setting(nil, "FANFARE_CORS_ORIGINS") {
            configuration.corsOrigins = origins.split(separator: ",").map {
                String($0).trimmingCharacters(in: .whitespaces)
            }
        }
        if let loops = try self.number(self.eventLoops, "FANFARE_EVENT_LOOPS") {
            configuration.eventLoops = max(1, loops)
        }
        if let seconds = try self.number(self.drainSeconds, "FANFARE_DRAIN_SECONDS") {
            configuration.drainTimeout = .seconds(Int64(max(1, seconds)))
        }
        if let seconds = try self.number(self.drainGraceSeconds, "FANFARE_DRAIN_GRACE_SECONDS") {
            configuration.drainGrace = .seconds(Int64(max(0, seconds)))
        }
        if let jitter = try self.number(self.drainRetryJitterMs, "FANFARE_DRAIN_RETRY_JITTER_MS") {
            configuration.drainRetryJitterMilliseconds = max(0, jitter)
        }

        var security = SecurityConfiguration()
        security.jwtSecret = try secret(self.jwtSecret, file: self.jwtSecretFile, "FANFARE_JWT_SECRET")
        if let path = setting(self.jwtPublicKey, "FANFARE_JWT_PUBLIC_KEY") {
            do {
                security.jwtPublicKeyPEM = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw ValidationError("cannot read the JWT public key \(path): \(error.localizedDescription)")
            }
        }
        security.publisherKey = try secret(self.publisherKey, file: self.publisherKeyFile, "FANFARE_PUBLISHER_KEY")
        security.adminKey = try secret(self.adminKey, file: self.adminKeyFile, "FANFARE_ADMIN_KEY")
        security.tokenCookie =
            setting(self.tokenCookie, "FANFARE_TOKEN_COOKIE", default: "fanfare_token") ?? "fanfare_token"
        security.corsAllowCredentials = self.corsCredentials || flag("FANFARE_CORS_CREDENTIALS")
        configuration.security = security

        var limits = LimitsConfiguration()
        if let value = try self.number(self.maxConnectionsPerClient, "FANFARE_MAX_CONNECTIONS_PER_CLIENT") {
            limits.connectionsPerClient = max(0, value)
        }
        if let value = try self.number(self.maxConnectionsPerIp, "FANFARE_MAX_CONNECTIONS_PER_IP") {
            limits.connectionsPerIP = max(0, value)
        }
        if let value = try self.number(self.maxConnections, "FANFARE_MAX_CONNECTIONS") {
            limits.connectionsPerNode = max(0, value)
        }
        if let value = try self.number(self.publishRate, "FANFARE_PUBLISH_RATE") {
            limits.publishesPerSecond = max(0, value)
        }
        if let value = try self.number(self.maxHeaderBytes, "FANFARE_MAX_HEADER_BYTES") {
            limits.maxHeaderBytes = max(1024, value)
        }
        if let value = try self.number(self.headerTimeoutSeconds, "FANFARE_HEADER_TIMEOUT_SECONDS") {
            limits.headerTimeout = .seconds(Int64(max(1, value)))
        }
        limits.trustForwardedFor = self.trustForwardedFor || flag("FANFARE_TRUST_FORWARDED_FOR")
        configuration.limits = limits
        if let value = try self.number(self.maxBodyBytes, "FANFARE_MAX_BODY_BYTES") {
            configuration.maxBodyBytes = max(1024, value)
        }
        if let address = setting(self.opsAddress, "FANFARE_OPS_ADDRESS") {
            guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
                throw ValidationError("FANFARE_OPS_ADDRESS must be host:port, got '\(address)'")
            }
            configuration.opsHost = String(address[..<colon])
            configuration.opsPort = port
        }

        let levelName = setting(self.logLevel, "FANFARE_LOG_LEVEL", default: "info") ?? "info"
        guard let level = Logger.Level(rawValue: levelName) else {
            throw ValidationError("unknown log level '\(levelName)'")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "fanfare")
        let node = FanfareNode(configuration: configuration, logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: node)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
    }

    private func flag(_ variable: String) -> Bool {
        ["1", "true", "yes"].contains(setting(nil, variable)?.lowercased() ?? "")
    }

    private func number(_ flag: Int?, _ variable: String) throws -> Int? {
        if let flag { return flag }
        guard let text = setting(nil, variable) else { return nil }
        guard let value = Int(text) else { throw ValidationError("\(variable) must be a number, got '\(text)'") }
        return value
    }
}
