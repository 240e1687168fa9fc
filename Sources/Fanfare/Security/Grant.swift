internal import Foundation

/// What a subscriber's token lets it join, and until when.
struct Grant: Sendable {
    var userID: String?
    var patterns: [String]
    /// When the token stops being accepted (its `exp` plus the leeway); an open stream
    /// ends then.
    var expires: Date?

    init(userID: String?, patterns: [String], expires: Date? = nil) {
        self.userID = userID
        self.patterns = patterns
        self.expires = expires
    }

    /// Whether `channel` matches a granted name exactly or by a trailing-`*` prefix.
    func allows(_ channel: String) -> Bool {
        self.patterns.contains { pattern in
            if pattern.hasSuffix("*") { return channel.hasPrefix(pattern.dropLast()) }
            return pattern == channel
        }
    }
}
