/// The answer to `POST /api/sse/disconnect`.
public struct DisconnectAnswer: Codable, Sendable, Hashable {
    /// Always `true`: a request that fails gets an ``ErrorAnswer``.
    public var ok: Bool
    /// Streams closed, summed over the nodes that answered.
    public var closed: Int
    /// Nodes that had streams of the channel when the request went out (each was asked).
    public var nodes: Int
    /// Nodes that answered within the wait (two seconds); fewer than `nodes` means the
    /// count may be short, not that streams stayed open.
    public var answered: Int

    public init(closed: Int, nodes: Int, answered: Int) {
        self.ok = true
        self.closed = closed
        self.nodes = nodes
        self.answered = answered
    }
}
