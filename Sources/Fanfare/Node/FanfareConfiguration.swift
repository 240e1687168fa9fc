public import NIOCore

/// Every setting of a node. `fanfare serve` fills it from flags and `FANFARE_*` variables.
public struct FanfareConfiguration: Sendable {
    /// Address to bind, e.g. `0.0.0.0`.
    public var host: String
    /// Port to bind; 0 picks a free one (see ``FanfareNode/localAddress``).
    public var port: Int
    /// Redis URL; `nil` runs the node embedded (one node, in-memory bus).
    public var redisURL: String?
    /// TLS to Redis: on for a `rediss…` URL or ``RedisTLSSettings/enabled``.
    public var redisTLS = RedisTLSSettings()
    /// This node's id in the registry and in `__connected` events.
    public var nodeID: String
    /// Prefix of every Redis key and channel the cluster uses.
    public var redisPrefix: String
    /// How often heartbeats are written to idle streams.
    public var heartbeatInterval: TimeAmount
    /// Keep presence: a user's streams on a topic make it present there, and
    /// `presence:<topic>` carries a `join` and a `leave` each time that starts and ends,
    /// across the cluster.
    public var presence = false
    /// Send heartbeats as `event: heartbeat` with data `{}` (visible to apps, for clients that
    /// expect an event) instead of comments.
    public var heartbeatAsEvent: Bool
    /// The `retry:` (milliseconds) sent at the start of each stream.
    public var retryMilliseconds: Int
    /// Unsent bytes above which a connection counts as a slow consumer and is closed.
    public var slowConsumerBytes: Int
    /// How often the node refreshes its row in the registry.
    public var registryInterval: TimeAmount
    /// How long a row lives without refresh; a dead node drops out after this.
    public var registryTTL: TimeAmount
    /// Events kept in each channel's history (approximate upper bound).
    public var historyMaxLength: Int
    /// How long events stay in a channel's history; 0 keeps them until the length bound.
    public var historyMaxAgeSeconds: Int
    /// A channel without a publish for this long loses its history (at least the age bound).
    public var historyIdleSeconds: Int
    /// How long a publish's idempotency key is remembered.
    public var idempotencyWindowSeconds: Int
    /// The most events one resume replays; a client further behind gets `__reset` for the
    /// channels past it.
    public var replayCap: Int
    /// Replicas that must have a publish before it is acknowledged (`WAIT`); 0 answers
    /// once the master has it; `nil` takes the topology's default (``effectiveReplicaAcks``).
    public var replicaAcks: Int?
    /// How long a publish waits for ``replicaAcks``; past it the answer is a 503 that
    /// invites a retry with the idempotency key. Must stay a second below the Redis
    /// command timeout (5 s), which the wait counts against.
    public var replicaAckTimeout: TimeAmount = .milliseconds(500)
    /// How often the node publishes a probe to prove its own delivery path (in a cluster);
    /// zero turns the check off.
    public var deliveryProbeInterval: TimeAmount = .seconds(1)
    /// A probe not back through the node's subscriber after this long makes the node not
    /// ready (`/readyz` 503, `fanfare_delivery_stalled`).
    public var deliveryTimeout: TimeAmount = .seconds(3)
    /// Stalled this long (and another node delivers), the node closes its streams with a
    /// jittered `retry:` and refuses new ones until probes come back.
    public var deliveryHandOverGrace: TimeAmount = .seconds(5)
    /// Live events a catching-up stream (or the node, catching a channel up) keeps per
    /// channel meanwhile; older ones are read from history again.
    public var liveBufferEvents: Int
    /// Events per history read.
    public var historyPageSize: Int
    /// Bytes of event bodies per history read (about: a page stops before the event that
    /// would pass it, and always has one). A stream catching up holds at most the slow
    /// consumer bound plus one page of unsent bytes.
    public var historyPageBytes: Int = 256 * 1024
    /// Origins allowed by CORS; `*` allows (and reflects) any origin.
    public var corsOrigins: [String]
    /// Largest request body accepted.
    public var maxBodyBytes: Int
    /// Event loops (threads) serving connections; defaults to one per core.
    public var eventLoops: Int
    /// Tokens and keys; anonymous development mode when empty.
    public var security: SecurityConfiguration
    /// Connection, rate and request-size bounds.
    public var limits: LimitsConfiguration
    /// When set, `/metrics` is served only on this second address (with `/healthz` and
    /// `/readyz`), e.g. `127.0.0.1:9100`, so it can stay off the public port.
    public var opsHost: String?
    public var opsPort: Int?
    /// The longest a graceful drain (SIGTERM) may take before the node stops anyway.
    public var drainTimeout: TimeAmount
    /// After its streams are gone a draining node keeps answering (`/readyz` false, new
    /// streams 503) this long before it stops listening, for load balancers that
    /// health-check `/readyz`. Counts towards ``drainTimeout``.
    public var drainGrace: TimeAmount
    /// On drain each stream gets a `retry:` drawn from 0 up to this many milliseconds,
    /// so a node's clients don't all reconnect in the same instant.
    public var drainRetryJitterMilliseconds: Int
    /// How long the hub may hold a loop turn's events so that more go out in one write per
    /// stream (`--write-delay-ms`); zero sends them at the end of the turn.
    public var writeDelay: TimeAmount = .zero

    public init(
        host: String = "0.0.0.0",
        port: Int = 8080,
        redisURL: String? = nil,
        nodeID: String = FanfareConfiguration.generatedNodeID(),
        redisPrefix: String = "fanfare",
        heartbeatInterval: TimeAmount = .seconds(15),
        heartbeatAsEvent: Bool = false,
        retryMilliseconds: Int = 2_000,
        slowConsumerBytes: Int = 1 << 20,
        registryInterval: TimeAmount = .seconds(1),
        registryTTL: TimeAmount = .seconds(5),
        historyMaxLength: Int = 10_000,
        historyMaxAgeSeconds: Int = 86_400,
        historyIdleSeconds: Int = 172_800,
        idempotencyWindowSeconds: Int = 300,
        replayCap: Int = 10_000,
        liveBufferEvents: Int = 1_024,
        historyPageSize: Int = 500,
        corsOrigins: [String] = ["*"],
        maxBodyBytes: Int = 64 * 1024,
        eventLoops: Int = System.coreCount,
        drainTimeout: TimeAmount = .seconds(10),
        drainGrace: TimeAmount = .zero,
        drainRetryJitterMilliseconds: Int = 2_000,
        security: SecurityConfiguration = SecurityConfiguration(),
        limits: LimitsConfiguration = LimitsConfiguration(),
        opsHost: String? = nil,
        opsPort: Int? = nil
    ) {
        self.security = security
        self.limits = limits
        self.opsHost = opsHost
        self.opsPort = opsPort
        self.drainTimeout = drainTimeout
        self.drainGrace = drainGrace
        self.drainRetryJitterMilliseconds = drainRetryJitterMilliseconds
        self.host = host
        self.port = port
        self.redisURL = redisURL
        self.nodeID = nodeID
        self.redisPrefix = redisPrefix
        self.heartbeatInterval = heartbeatInterval
        self.heartbeatAsEvent = heartbeatAsEvent
        self.retryMilliseconds = retryMilliseconds
        self.slowConsumerBytes = slowConsumerBytes
        self.registryInterval = registryInterval
        self.registryTTL = registryTTL
        self.historyMaxLength = historyMaxLength
        self.historyMaxAgeSeconds = historyMaxAgeSeconds
        self.historyIdleSeconds = historyIdleSeconds
        self.idempotencyWindowSeconds = idempotencyWindowSeconds
        self.replayCap = replayCap
        self.liveBufferEvents = liveBufferEvents
        self.historyPageSize = historyPageSize
        self.corsOrigins = corsOrigins
        self.maxBodyBytes = maxBodyBytes
        self.eventLoops = eventLoops
    }

    /// A short random id such as `node-3f9a1c`.
    public static func generatedNodeID() -> String {
        let alphabet = Array("0123456789abcdef")
        return "node-" + String((0..<6).map { _ in alphabet[Int.random(in: 0..<16)] })
    }

    /// The history policy these settings make (the idle expiry is never shorter than the
    /// age bound, so an idle channel's history is not gone before its events would age out).
    var historyPolicy: HistoryPolicy {
        let age = Int64(self.historyMaxAgeSeconds) * 1_000
        return HistoryPolicy(
            maxLength: self.historyMaxLength,
            maxAgeMilliseconds: age,
            idleExpiryMilliseconds: max(age, Int64(self.historyIdleSeconds) * 1_000),
            idempotencyWindowMilliseconds: Int64(self.idempotencyWindowSeconds) * 1_000
        )
    }
}
