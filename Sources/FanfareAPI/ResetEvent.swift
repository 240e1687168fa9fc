/// The data of `event: __reset`: events of these channels may be missing from this stream,
/// so the app should fetch their state afresh. The stream goes on live, and its other
/// channels are complete. The event's `id:` is the stream's cursor past the gap.
public struct ResetEvent: Codable, Sendable, Hashable {
    /// Why history could not fill the gap.
    public struct Reason: RawRepresentable, Codable, Sendable, Hashable {
        public var rawValue: String

        public init(rawValue: String) {
            self.rawValue = rawValue
        }

        /// Events after the client's position left the channel's history (by count or age).
        public static let trimmed = Reason(rawValue: "trimmed")
        /// The channel's history is gone: it expired when the channel was idle, or Redis
        /// lost it.
        public static let gone = Reason(rawValue: "gone")
        /// The Last-Event-ID is not a cursor this cluster writes (or is of the earlier
        /// `<ms>-<seq>` kind), or names a position the channel never had.
        public static let unknown = Reason(rawValue: "unknown")
        /// Catching up would have replayed more than the node's replay cap.
        public static let capped = Reason(rawValue: "capped")
    }

    /// The channels that may miss events.
    public var channels: [String]
    public var reason: Reason

    public init(channels: [String], reason: Reason) {
        self.channels = channels
        self.reason = reason
    }
}
