/// What a subscriber's token lets it join.
struct Grant: Sendable {
    var userID: String?
    var patterns: [String]

    /// Whether `channel` matches a granted name exactly or by a trailing-`*` prefix.
    func allows(_ channel: String) -> Bool {
        self.patterns.contains { pattern in
            if pattern.hasSuffix("*") { return channel.hasPrefix(pattern.dropLast()) }
            return pattern == channel
        }
    }
}
