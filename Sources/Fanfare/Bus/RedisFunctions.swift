/// The Redis Function library every node loads (`Resources/fanfare.lua`, embedded in the
/// binary): one library per key prefix, named after it, with the prefix and the history
/// policy filled in. The test suite loads it into a real Redis and calls every function.
///
/// `<prefix>_publish` is the one command any service can use to publish:
///
///     FCALL fanfare_publish 1 fanfare:h:{orders} <event> <data>
///
/// It appends the event to the channel's own history (its position is the entry id),
/// trims that history by count and age, publishes the body with its position and its
/// predecessor's, and answers `{position, nodes reached, duplicate}`. The library also
/// holds `<prefix>_head`, `<prefix>_read` (resume and backfill), `<prefix>_policy` and
/// the registry's functions.
enum RedisFunctions {
    /// Bumped whenever the functions change in a way older nodes could not use.
    static let version = 7

    /// The library's Lua source for `prefix` and `policy`; `sharded` publishes with
    /// SPUBLISH, as a Redis Cluster's nodes need.
    static func source(names: RedisNames, policy: HistoryPolicy, sharded: Bool = false) -> String {
        String(decoding: PackageResources.fanfare_lua, as: UTF8.self)
            .replacingPlaceholder("__PREFIX__", with: names.prefix)
            .replacingPlaceholder("__MAXLEN__", with: String(max(1, policy.maxLength)))
            .replacingPlaceholder("__MAX_AGE_MS__", with: String(max(0, policy.maxAgeMilliseconds)))
            .replacingPlaceholder("__IDLE_MS__", with: String(max(1_000, policy.idleExpiryMilliseconds)))
            .replacingPlaceholder("__IDEMPOTENCY_MS__", with: String(max(1_000, policy.idempotencyWindowMilliseconds)))
            .replacingPlaceholder("__PUBLISH__", with: sharded ? "SPUBLISH" : "PUBLISH")
    }
}

extension String {
    /// Every `placeholder` replaced by `value`, without Foundation.
    fileprivate func replacingPlaceholder(_ placeholder: String, with value: String) -> String {
        var result = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: placeholder) {
            result += rest[..<range.lowerBound]
            result += value
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
