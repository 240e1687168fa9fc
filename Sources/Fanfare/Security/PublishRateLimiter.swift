import Synchronization

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

    /// The most events one request may publish (a batch larger than the burst never fits).
    var burst: Int? { self.rate > 0 ? self.rate : nil }

    /// Whether `identity` may publish `count` events now (and takes their tokens if so).
    func allow(_ identity: String, count: Int = 1, now: ContinuousClock.Instant = .now) -> Bool {
        guard self.rate > 0 else { return true }
        let rate = Double(self.rate)
        return self.buckets.withLock { buckets in
            var bucket = buckets[identity] ?? Bucket(tokens: rate, updated: now)
            let elapsed = now - bucket.updated
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            bucket.tokens = min(rate, bucket.tokens + seconds * rate)
            bucket.updated = now
            let allowed = bucket.tokens >= Double(count)
            if allowed { bucket.tokens -= Double(count) }
            buckets[identity] = bucket
            // Forget idle credentials so the map stays small.
            if buckets.count > 10_000 { buckets = buckets.filter { $0.value.tokens < rate } }
            return allowed
        }
    }
}
