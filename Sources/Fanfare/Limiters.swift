import Synchronization

/// Counts open streams per client id, per address and per node, and refuses one over a
/// bound. A stream holds its place from acceptance until its connection closes.
final class ConnectionLimiter: Sendable {
    private struct Counts {
        var clients: [String: Int] = [:]
        var addresses: [String: Int] = [:]
        var total = 0
    }

    enum Refusal: String, Sendable {
        case client = "connections_per_client"
        case address = "connections_per_ip"
        case node = "connections_per_node"
    }

    private let limits: LimitsConfiguration
    private let counts = Mutex(Counts())

    init(limits: LimitsConfiguration) {
        self.limits = limits
    }

    /// Takes a place for a stream, or says which bound it would cross.
    func acquire(clientID: String, address: String) -> Refusal? {
        self.counts.withLock { counts in
            let limits = self.limits
            if limits.connectionsPerNode > 0, counts.total >= limits.connectionsPerNode { return .node }
            if limits.connectionsPerIP > 0, counts.addresses[address, default: 0] >= limits.connectionsPerIP {
                return .address
            }
            if limits.connectionsPerClient > 0, counts.clients[clientID, default: 0] >= limits.connectionsPerClient {
                return .client
            }
            counts.total += 1
            counts.addresses[address, default: 0] += 1
            counts.clients[clientID, default: 0] += 1
            return nil
        }
    }

    func release(clientID: String, address: String) {
        self.counts.withLock { counts in
            counts.total -= 1
            Self.decrement(&counts.addresses, address)
            Self.decrement(&counts.clients, clientID)
        }
    }

    private static func decrement(_ map: inout [String: Int], _ key: String) {
        guard let value = map[key] else { return }
        if value <= 1 { map[key] = nil } else { map[key] = value - 1 }
    }
}

/// A token bucket per credential: `rate` publishes per second, bursts up to `rate`.
final class PublishRateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private let rate: Int
    private let buckets = Mutex([String: Bucket]())

    init(rate: Int) {
        self.rate = rate
    }

    /// Whether `identity` may publish now (and takes a token if so).
    func allow(_ identity: String, now: ContinuousClock.Instant = .now) -> Bool {
        guard self.rate > 0 else { return true }
        let rate = Double(self.rate)
        return self.buckets.withLock { buckets in
            var bucket = buckets[identity] ?? Bucket(tokens: rate, updated: now)
            let elapsed = now - bucket.updated
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            bucket.tokens = min(rate, bucket.tokens + seconds * rate)
            bucket.updated = now
            let allowed = bucket.tokens >= 1
            if allowed { bucket.tokens -= 1 }
            buckets[identity] = bucket
            // Forget idle credentials so the map stays small.
            if buckets.count > 10_000 { buckets = buckets.filter { $0.value.tokens < rate } }
            return allowed
        }
    }
}
