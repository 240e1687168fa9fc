import ArgumentParser
import Fanfare
import Foundation
import Logging
import NIOCore
import UnixSignals

struct ServeCommand: AsyncParsableCommand, EnvironmentConfigurable {
    static let environment: [EnvironmentOption] =
        RedisTLSOptions.environment + [
            .value("host"), .value("port"), .value("redis", variable: "FANFARE_REDIS_URL"), .value("node-id"),
            .value("redis-prefix"), .value("heartbeat-seconds"), .flag("heartbeat-event"),
            .value("slow-consumer-bytes"),
            .value("history-size"),
            .value("history-seconds"), .value("history-idle-seconds"), .value("idempotency-seconds"),
            .value("replica-acks"), .value("replica-ack-timeout-ms"), .value("delivery-probe-ms"),
            .value("delivery-timeout-ms"), .value("delivery-handover-seconds"),
            .value("replay-cap"), .value("cors-origin", variable: "FANFARE_CORS_ORIGINS"), .value("event-loops"),
            .secret("jwt-secret"), .value("jwt-public-key"), .value("jwt-audience"),
            .value("jwt-issuer"), .value("jwt-leeway-seconds"), .secret("publisher-key"), .secret("admin-key"),
            .value("token-cookie"), .flag("cors-credentials"), .value("max-connections-per-client"),
            .value("max-connections-per-user"), .value("over-user-limit"), .flag("presence"),
            .value("max-connections-per-ip"), .value("max-channels-per-stream"), .value("max-connections"),
            .value("publish-rate"),
            .value("max-body-bytes"), .value("max-header-bytes"), .value("header-timeout-seconds"),
            .flag("trust-forwarded-for"), .value("ops-address"), .value("drain-seconds"), .value("write-delay-ms"),
            .value("drain-grace-seconds"), .value("drain-retry-jitter-ms"), .value("registry-ttl-seconds"),
            .value("log-level"), .value("log-format"),
        ]

    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run a node. Without a Redis URL it runs embedded: one node, in-memory bus.",
        discussion: EnvironmentOption.help(Self.environment)
    )

    @Option(help: "Address to bind.")
    var host = "0.0.0.0"

    @Option(help: "Port to bind.")
    var port = 8080

    @Option(
        help: """
            Redis URL redis://[user:password@]host:port/db, or redis-sentinel://[user:password@]host:port,host:port/<master>[/db]\
            [?sentinelPassword=…] to follow the master Sentinel watches, or redis-cluster://[user:password@]host:port,host:port\
             for a Redis Cluster; rediss://, rediss-sentinel://, rediss-cluster:// for TLS. Without one the node runs embedded.
            """
    )
    var redis: String?

    @OptionGroup var redisTLS: RedisTLSOptions

    @Option(name: .customLong("node-id"), help: "This node's id (default: generated, node-<6 hex>).")
    var nodeID: String?

    @Option(help: "Prefix of every Redis key and channel; clusters sharing a Redis need distinct ones.")
    var redisPrefix = "fanfare"

    @Option(help: "Heartbeat interval in seconds (at least 1).")
    var heartbeatSeconds = 15

    @Flag(
        help:
            "Send heartbeats as an event named heartbeat (data {}), for clients that expect one, instead of a comment."
    )
    var heartbeatEvent = false

    @Option(help: "Close a stream whose unsent bytes exceed this (at least 4096).")
    var slowConsumerBytes = 1 << 20

    @Option(help: "Events kept in each channel's history.")
    var historySize = 10_000

    @Option(help: "Seconds events stay in a channel's history, 0 for no age limit.")
    var historySeconds = 86_400

    @Option(help: "Seconds without a publish after which a channel's history is dropped (at least the age limit).")
    var historyIdleSeconds = 172_800

    @Option(help: "Seconds a publish's idempotencyKey is remembered.")
    var idempotencySeconds = 300

    @Option(
        help:
            "Replicas that must have a publish before it is acknowledged (WAIT); 0: the master alone. Default: 1 with Sentinel or Redis Cluster, 0 with one Redis."
    )
    var replicaAcks: Int?

    @Option(help: "How long a publish waits for --replica-acks before it gets a 503 that invites a retry.")
    var replicaAckTimeoutMs = 500

    @Option(
        help:
            "How often the node publishes a probe and expects it back through its own subscriber (with Redis); 0 turns the check off."
    )
    var deliveryProbeMs = 1_000

    @Option(help: "A probe not back after this long makes the node not ready (/readyz 503).")
    var deliveryTimeoutMs = 3_000

    @Option(
        help:
            "Not delivering this long (and another node does), the node closes its streams with a retry and refuses new ones until probes come back."
    )
    var deliveryHandoverSeconds = 5

    @Option(help: "Most events one resume replays; a client further behind gets __reset for what is past it.")
    var replayCap = 10_000

    @Option(
        name: .customLong("cors-origin"),
        help: "Allowed CORS origin, repeatable or comma-separated: *, an exact origin, or *.example.com (default: *)."
    )
    var corsOrigins: [String] = []

    @Option(help: "Event loop threads (default: one per core).")
    var eventLoops: Int?

    @Option(help: "HS256 secret for tokens, at least 32 bytes.")
    var jwtSecret: String?

    @Option(help: "File holding the HS256 secret.")
    var jwtSecretFile: String?

    @Option(help: "PEM file of an ES256 or RS256 public key for tokens.")
    var jwtPublicKey: String?

    @Option(help: "When set, a token's aud must name this audience.")
    var jwtAudience: String?

    @Option(help: "When set, a token's iss must be this issuer.")
    var jwtIssuer: String?

    @Option(help: "Seconds a token is still accepted past its exp (and before its nbf), for clock skew; 0 to 300.")
    var jwtLeewaySeconds = 10

    @Option(help: "Bearer key that may publish.")
    var publisherKey: String?

    @Option(help: "File holding the publisher key.")
    var publisherKeyFile: String?

    @Option(help: "Bearer key for counts, client lists and /admin.")
    var adminKey: String?

    @Option(help: "File holding the admin key.")
    var adminKeyFile: String?

    @Option(help: "Cookie that may carry a subscriber token.")
    var tokenCookie = "fanfare_token"

    @Flag(help: "Send Access-Control-Allow-Credentials to allowed origins.")
    var corsCredentials = false

    @Option(help: "Streams per client id per node, 0 = no bound.")
    var maxConnectionsPerClient = 32

    @Option(
        help:
            "Streams per user id across the whole cluster, counted in Redis, 0 = no bound (streams without a userId are not counted)."
    )
    var maxConnectionsPerUser = 0

    @Option(
        help:
            "What a stream over --max-connections-per-user gets: refuse (429) or close-oldest (the user's oldest stream gets __disconnect)."
    )
    var overUserLimit = "refuse"

    @Flag(
        help:
            "Keep presence: presence:<channel> carries join and leave as users' first stream on a channel opens and last one closes, cluster-wide."
    )
    var presence = false

    @Option(help: "Streams per client address per node, 0 = no bound.")
    var maxConnectionsPerIp = 0

    @Option(help: "Channels one stream may ask for with ?channels= (at least 1).")
    var maxChannelsPerStream = 64

    @Option(help: "Streams per node, 0 = no bound.")
    var maxConnections = 0

    @Option(help: "Publishes per second per credential, 0 = no bound.")
    var publishRate = 0

    @Option(help: "Largest request body in bytes (at least 1024).")
    var maxBodyBytes = 64 * 1024

    @Option(help: "Largest request headers in bytes (at least 1024).")
    var maxHeaderBytes = 16 * 1024

    @Option(help: "Seconds a connection may take to send its headers, and an idle keep-alive may last.")
    var headerTimeoutSeconds = 10

    @Flag(help: "Take client addresses from X-Forwarded-For, behind your own proxy.")
    var trustForwardedFor = false

    @Option(help: "Serve /metrics only on this host:port, e.g. 127.0.0.1:9100.")
    var opsAddress: String?

    @Option(help: "Longest graceful drain on SIGTERM, in seconds.")
    var drainSeconds = 10

    @Option(
        help:
            "On drain, keep answering /readyz (false) and refusing new streams this long after the streams are gone, for health-checking load balancers."
    )
    var drainGraceSeconds = 0

    @Option(
        help: "How long a node's registry row outlives its last refresh (a node that dies without leaving), at least 2."
    )
    var registryTtlSeconds = 5

    @Option(help: "On drain, clients are told to retry after a random 0…N ms.")
    var drainRetryJitterMs = 2_000

    @Option(
        help: """
            Hold each loop turn's events up to this many milliseconds (0 to 100) so that more go out in \
            one write per stream: less CPU per delivery under load, that much more latency. 0: off.
            """
    )
    var writeDelayMs = 0

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel = "info"

    @Option(help: "Log format: text (one line per event) or json (one JSON object per line, for log collectors).")
    var logFormat = "text"

    func run() async throws {
        var configuration = FanfareConfiguration()
        configuration.host = self.host
        configuration.port = self.port
        configuration.redisURL = self.redis
        configuration.redisTLS = self.redisTLS.settings
        configuration.nodeID = self.nodeID ?? FanfareConfiguration.generatedNodeID()
        configuration.redisPrefix = self.redisPrefix
        configuration.heartbeatInterval = .seconds(saturating: self.heartbeatSeconds)
        configuration.heartbeatAsEvent = self.heartbeatEvent
        configuration.presence = self.presence
        configuration.slowConsumerBytes = self.slowConsumerBytes
        configuration.historyMaxLength = self.historySize
        configuration.historyMaxAgeSeconds = self.historySeconds
        configuration.historyIdleSeconds = self.historyIdleSeconds
        configuration.idempotencyWindowSeconds = self.idempotencySeconds
        configuration.replicaAcks = self.replicaAcks
        configuration.replicaAckTimeout = .milliseconds(saturating: self.replicaAckTimeoutMs)
        configuration.replayCap = self.replayCap
        configuration.deliveryProbeInterval = .milliseconds(saturating: self.deliveryProbeMs)
        configuration.deliveryTimeout = .milliseconds(saturating: self.deliveryTimeoutMs)
        configuration.deliveryHandOverGrace = .seconds(saturating: self.deliveryHandoverSeconds)
        let origins = self.corsOrigins.flatMap { $0.split(separator: ",") }.map {
            String($0).trimmingCharacters(in: .whitespaces)
        }
        if !origins.isEmpty { configuration.corsOrigins = origins }
        if let loops = self.eventLoops { configuration.eventLoops = loops }
        configuration.drainTimeout = .seconds(saturating: self.drainSeconds)
        configuration.drainGrace = .seconds(saturating: self.drainGraceSeconds)
        configuration.registryTTL = .seconds(saturating: self.registryTtlSeconds)
        configuration.drainRetryJitterMilliseconds = self.drainRetryJitterMs
        configuration.writeDelay = .milliseconds(saturating: self.writeDelayMs)

        var security = SecurityConfiguration()
        security.jwtSecret = try Secret.read(self.jwtSecret, file: self.jwtSecretFile, option: "jwt-secret")
        if let path = self.jwtPublicKey {
            do {
                security.jwtPublicKeyPEM = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw ValidationError("cannot read the JWT public key \(path): \(error.localizedDescription)")
            }
        }
        security.publisherKey = try Secret.read(self.publisherKey, file: self.publisherKeyFile, option: "publisher-key")
        security.adminKey = try Secret.read(self.adminKey, file: self.adminKeyFile, option: "admin-key")
        security.tokenCookie = self.tokenCookie
        security.audience = self.jwtAudience.flatMap { $0.isEmpty ? nil : $0 }
        security.issuer = self.jwtIssuer.flatMap { $0.isEmpty ? nil : $0 }
        security.leewaySeconds = self.jwtLeewaySeconds
        security.corsAllowCredentials = self.corsCredentials
        configuration.security = security

        var limits = LimitsConfiguration()
        limits.connectionsPerClient = self.maxConnectionsPerClient
        limits.connectionsPerUser = self.maxConnectionsPerUser
        guard let policy = UserLimitPolicy(rawValue: self.overUserLimit) else {
            throw ValidationError("unknown --over-user-limit '\(self.overUserLimit)': use refuse or close-oldest")
        }
        limits.userLimitPolicy = policy
        limits.connectionsPerIP = self.maxConnectionsPerIp
        limits.channelsPerStream = self.maxChannelsPerStream
        limits.connectionsPerNode = self.maxConnections
        limits.publishesPerSecond = self.publishRate
        limits.maxHeaderBytes = self.maxHeaderBytes
        limits.headerTimeout = .seconds(saturating: self.headerTimeoutSeconds)
        limits.trustForwardedFor = self.trustForwardedFor
        configuration.limits = limits
        configuration.maxBodyBytes = self.maxBodyBytes
        if let address = self.opsAddress {
            guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
                throw ValidationError("--ops-address must be host:port, not '\(address)'")
            }
            configuration.opsHost = String(address[..<colon])
            configuration.opsPort = port
        }

        guard let level = Logger.Level(rawValue: self.logLevel) else {
            throw ValidationError("unknown log level '\(self.logLevel)'")
        }
        switch self.logFormat {
        case "text":
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        case "json":
            LoggingSystem.bootstrap { label in
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        default:
            throw ValidationError("unknown log format '\(self.logFormat)': use text or json")
        }
        let logger = Logger(label: "fanfare")
        let node = try await FanfareNode(
            configuration: configuration,
            logger: logger,
            gracefulShutdownSignals: [.sigterm, .sigint]
        )
        try await node.run()
    }
}
