/// What a resume finds in the history.
enum Replay: Sendable {
    /// Every retained event after the id on the asked channels, in order.
    case events([HistoryEntry])
    /// The id is older than the retained history or was never issued: events may be missing.
    case gap(oldest: EventID?)
}
