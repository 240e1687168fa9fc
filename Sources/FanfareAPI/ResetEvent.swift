/// The data of `event: __reset`: events may be missing from this stream, so the app should
/// fetch its state afresh. The stream goes on live.
public struct ResetEvent: Codable, Sendable, Hashable {
    /// Why history could not fill the gap.
    public struct Reason: RawRepresentable, Codable, Sendable, Hashable {
        public var rawValue: String

        public init(rawValue: String) {
            self.rawValue = rawValue
        }

        /// The resume id is older than the history the cluster keeps.
        public static let trimmed = Reason(rawValue: "trimmed")
        /// The resume id is not one this cluster issued, or newer than any it issued.
        public static let unknown = Reason(rawValue: "unknown")
        /// The node's Redis subscription was down longer than the history covers.
        public static let redis = Reason(rawValue: "redis")
    }

    /// The id the gap starts after: the client's resume id, or the node's last delivered id.
    public var lastEventId: String
    /// The oldest id history still holds, when known.
    public var oldestEventId: String?
    public var reason: Reason

    public init(lastEventId: String, oldestEventId: String?, reason: Reason) {
        self.lastEventId = lastEventId
        self.oldestEventId = oldestEventId
        self.reason = reason
    }

    private enum CodingKeys: String, CodingKey {
        case lastEventId, oldestEventId, reason
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.lastEventId, forKey: .lastEventId)
        // Always present: `null` says "unknown", which an absent key would not.
        try container.encode(self.oldestEventId, forKey: .oldestEventId)
        try container.encode(self.reason, forKey: .reason)
    }
}
