internal import HiredisNIO
public import NIOCore

extension FanfareConfiguration {
    /// Checks every setting, and the settings that must agree with each other, in one
    /// place: the first that cannot work is thrown as ``FanfareError/Code/invalidConfiguration``
    /// with a sentence naming its option. Nothing is clamped: a value out of range is an
    /// error, never quietly another value.
    public func validate() throws {
        guard ChannelName.isValidID(self.nodeID), self.nodeID.utf8.count <= 64 else {
            throw Self.invalid("the node id must be 1-64 of A-Z a-z 0-9 _ . @ -, not '\(self.nodeID)'")
        }
        guard RedisNames.isValidPrefix(self.redisPrefix) else {
            throw Self.invalid(
                "the Redis prefix must be 1-32 of A-Z a-z 0-9 _, starting with a letter, not '\(self.redisPrefix)'"
            )
        }
        try Self.range("--port", self.port, 0...65_535)
        if let opsPort = self.opsPort { try Self.range("--ops-address's port", opsPort, 0...65_535) }
        try Self.atLeast("--event-loops", self.eventLoops, 1)
        // Whole seconds on the command line; in process (tests) shorter intervals work too.
        guard self.heartbeatInterval > .zero else {
            throw Self.invalid("--heartbeat-seconds must be at least 1, not \(Self.seconds(self.heartbeatInterval))")
        }
        try Self.atLeast("--slow-consumer-bytes", self.slowConsumerBytes, 4_096)
        try Self.atLeast("--history-size", self.historyMaxLength, 1)
        // Kept in Redis in milliseconds: ten years at most.
        let tenYears = 315_360_000
        try Self.range("--history-seconds", self.historyMaxAgeSeconds, 0...tenYears)
        try Self.range("--history-idle-seconds", self.historyIdleSeconds, 1...tenYears)
        try Self.range("--idempotency-seconds", self.idempotencyWindowSeconds, 1...tenYears)
        try Self.atLeast("--replay-cap", self.replayCap, 1)
        try Self.atLeast("--replica-acks", self.effectiveReplicaAcks, 0)
        try Self.atLeast("--delivery-probe-ms", Self.milliseconds(self.deliveryProbeInterval), 0)
        try Self.atLeast("--delivery-timeout-ms", Self.milliseconds(self.deliveryTimeout), 1)
        try Self.atLeast("--delivery-handover-seconds", Self.seconds(self.deliveryHandOverGrace), 0)
        try Self.atLeast("--drain-seconds", Self.seconds(self.drainTimeout), 1)
        try Self.atLeast("--drain-grace-seconds", Self.seconds(self.drainGrace), 0)
        try Self.atLeast("--registry-ttl-seconds", Self.seconds(self.registryTTL), 2)
        try Self.atLeast("--drain-retry-jitter-ms", self.drainRetryJitterMilliseconds, 0)
        try Self.range("--write-delay-ms", Self.milliseconds(self.writeDelay), 0...100)
        try Self.atLeast("--max-body-bytes", self.maxBodyBytes, 1_024)
        try Self.atLeast("--max-connections-per-client", self.limits.connectionsPerClient, 0)
        try Self.atLeast("--max-connections-per-user", self.limits.connectionsPerUser, 0)
        try Self.atLeast("--max-connections-per-ip", self.limits.connectionsPerIP, 0)
        try Self.atLeast("--max-channels-per-stream", self.limits.channelsPerStream, 1)
        try Self.atLeast("--max-connections", self.limits.connectionsPerNode, 0)
        try Self.atLeast("--publish-rate", self.limits.publishesPerSecond, 0)
        try Self.atLeast("--max-header-bytes", self.limits.maxHeaderBytes, 1_024)
        try Self.atLeast("--header-timeout-seconds", Self.seconds(self.limits.headerTimeout), 1)
        try Self.range("--jwt-leeway-seconds", self.security.leewaySeconds, 0...300)

        if self.security.corsAllowCredentials, self.corsOrigins.contains("*") {
            // Every origin is reflected; with credentials the browser then sends the token
            // cookie from any website and lets it read the answer.
            throw Self.invalid(
                "--cors-credentials with the allowed origin * would let any website read a signed-in user's streams: "
                    + "name the allowed origins with --cors-origin"
            )
        }
        let commandTimeout = RedisConfiguration().commandTimeout ?? .seconds(5)
        if self.effectiveReplicaAcks > 0, self.replicaAckTimeout < .milliseconds(1) {
            // WAIT with 0 ms waits for ever.
            throw Self.invalid("--replica-ack-timeout-ms must be at least 1")
        }
        if self.effectiveReplicaAcks > 0, self.replicaAckTimeout + .seconds(1) > commandTimeout {
            throw Self.invalid(
                "--replica-ack-timeout-ms \(Self.milliseconds(self.replicaAckTimeout)) must be at most "
                    + "\(Self.milliseconds(commandTimeout - .seconds(1))): a publish waits for its replicas "
                    + "within the Redis command timeout (\(Self.milliseconds(commandTimeout)) ms)"
            )
        }
        try self.redisTLS.check(redisURL: self.redisURL)
        if self.deliveryProbeInterval > .zero, self.deliveryTimeout <= self.deliveryProbeInterval {
            throw Self.invalid(
                "the delivery timeout must be longer than the probe interval, or every probe would be late"
            )
        }
    }

    /// Whether the Redis URL names a topology built to fail over (Sentinel or Redis Cluster).
    var failsOver: Bool {
        guard let url = self.redisURL else { return false }
        return ["redis-sentinel://", "rediss-sentinel://", "redis-cluster://", "rediss-cluster://"].contains {
            url.hasPrefix($0)
        }
    }

    /// The replicas a publish waits for: as set, or by default 1 with Sentinel or Redis
    /// Cluster (a failover must not lose an acknowledged publish) and 0 with one Redis
    /// (there is nothing to fail over to).
    public var effectiveReplicaAcks: Int {
        self.replicaAcks ?? (self.failsOver ? 1 : 0)
    }

    private static func invalid(_ sentence: String) -> FanfareError {
        FanfareError(.invalidConfiguration, sentence)
    }

    private static func atLeast(_ option: String, _ value: Int64, _ minimum: Int64) throws {
        guard value >= minimum else { throw Self.invalid("\(option) must be at least \(minimum), not \(value)") }
    }

    private static func atLeast(_ option: String, _ value: Int, _ minimum: Int) throws {
        try Self.atLeast(option, Int64(value), Int64(minimum))
    }

    private static func range(_ option: String, _ value: Int64, _ range: ClosedRange<Int64>) throws {
        guard range.contains(value) else {
            throw Self.invalid("\(option) must be from \(range.lowerBound) to \(range.upperBound), not \(value)")
        }
    }

    private static func range(_ option: String, _ value: Int, _ range: ClosedRange<Int>) throws {
        try Self.range(option, Int64(value), Int64(range.lowerBound)...Int64(range.upperBound))
    }

    private static func seconds(_ amount: TimeAmount) -> Int64 { amount.nanoseconds / 1_000_000_000 }

    private static func milliseconds(_ amount: TimeAmount) -> Int64 { amount.nanoseconds / 1_000_000 }
}

extension TimeAmount {
    /// `count` units of `nanosecondsEach`, saturating instead of overflowing (a setting of
    /// a billion years is a long time, not a crash).
    static func saturating(_ count: Int, unitNanoseconds nanosecondsEach: Int64) -> TimeAmount {
        let (product, overflow) = Int64(clamping: count).multipliedReportingOverflow(by: nanosecondsEach)
        if overflow { return .nanoseconds(count < 0 ? .min : .max) }
        return .nanoseconds(product)
    }

    /// Whole seconds, saturating.
    public static func seconds(saturating count: Int) -> TimeAmount {
        .saturating(count, unitNanoseconds: 1_000_000_000)
    }

    /// Whole milliseconds, saturating.
    public static func milliseconds(saturating count: Int) -> TimeAmount {
        .saturating(count, unitNanoseconds: 1_000_000)
    }
}
