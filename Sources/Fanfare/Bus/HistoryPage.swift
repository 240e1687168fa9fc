/// What one read of a channel's history found after a position.
struct HistoryPage: Sendable {
    enum Status: Sendable, Equatable {
        /// `events` follow the position without a gap (none when it is the newest).
        case ok
        /// Events after the position are gone: trimmed by count or age.
        case trimmed
        /// The channel's history is gone (expired when idle, or Redis lost it) while the
        /// position says there was one.
        case gone
        /// The position is newer than anything the channel has: not one this cluster issued.
        case unknown
    }

    var status: Status
    /// The channel's newest position at the time of the read (``StreamPosition/zero`` when
    /// it has no history).
    var head: StreamPosition
    /// In order, at most the number (and about the bytes) asked for. After a gap
    /// (`trimmed`, `gone`) the first events that are left, which follow on from the first
    /// one's predecessor.
    var events: [BusEvent]
    /// The channel's head is a final event: the channel is finished.
    var isFinal = false

    /// The page stops before the channel's head: more history follows its last event.
    var hasMore: Bool {
        guard let last = self.events.last else { return false }
        return last.position < self.head
    }
}
