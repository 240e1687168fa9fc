/// The answer to `GET /api/sse/history/{channel}`: one page of the channel's retained
/// events, oldest first.
public struct HistoryAnswer: Codable, Sendable, Hashable {
    /// One retained event, as a stream would deliver it.
    public struct Event: Codable, Sendable, Hashable {
        /// The event's position in its channel (`<milliseconds>-<sequence>`).
        public var position: String
        /// The SSE event name (`message` when it has none).
        public var event: String
        /// The SSE data: the published payload's JSON text (lines joined with `\n`).
        public var data: String
        /// `true` on the event that ended the channel; absent otherwise.
        public var final: Bool?

        public init(position: String, event: String, data: String, final: Bool? = nil) {
            self.position = position
            self.event = event
            self.data = data
            self.final = final
        }
    }

    /// Always `true`: a request that fails gets an ``ErrorAnswer``.
    public var ok: Bool
    public var channel: String
    /// `ok`: the events follow `after` without a gap. `trimmed` or `gone`: events after
    /// `after` left the history (by count or age, or all of it expired); `events` are the
    /// oldest that are left. `unknown`: `after` is no position this channel had.
    public var status: String
    public var events: [Event]
    /// The channel's newest position (`0-0` when it has no history).
    public var head: String
    /// The position to pass as `after` for the next page; absent once the page reached
    /// the head.
    public var next: String?
    /// The channel ended with a final event: no more will come.
    public var final: Bool

    public init(channel: String, status: String, events: [Event], head: String, next: String?, final: Bool) {
        self.ok = true
        self.channel = channel
        self.status = status
        self.events = events
        self.head = head
        self.next = next
        self.final = final
    }
}
