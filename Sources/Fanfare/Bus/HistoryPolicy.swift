/// How much history each channel keeps. It is part of the function library the nodes load
/// into Redis, so every publisher, the nodes' and anyone's one-command publish, keeps
/// the same; nodes configured otherwise say so at start.
struct HistoryPolicy: Sendable, Hashable, CustomStringConvertible {
    /// Events kept per channel (approximately: Redis trims in whole nodes of its stream).
    var maxLength: Int
    /// Events older than this leave the history; 0 keeps them until the length bound.
    var maxAgeMilliseconds: Int64
    /// A channel without a publish for this long loses its history (key expiry).
    var idleExpiryMilliseconds: Int64
    /// How long an idempotency key is remembered.
    var idempotencyWindowMilliseconds: Int64

    /// The form the library reports it in and `fanfare.history` logs.
    var description: String {
        "maxlen=\(self.maxLength) age_ms=\(self.maxAgeMilliseconds) idle_ms=\(self.idleExpiryMilliseconds) idempotency_ms=\(self.idempotencyWindowMilliseconds)"
    }
}
