/// Publishes that must wait for replicas, grouped: while one group's `WAIT` is out, the
/// publishes that arrive are kept (up to a bound) and go out together once it answers,
/// followed by one `WAIT` of their own. Pipelined one `WAIT` each, a replica that does not
/// answer would make the n-th publish wait n ack timeouts; grouped, none waits more than
/// two. A state machine: its methods return what to send; ``ReplicatedPublisher`` sends it.
struct GroupCommitStateMachine<Item> {
    enum SubmitAction {
        /// Send these now, with one WAIT after them.
        case send([Item])
        /// Kept for the next group.
        case wait
        /// Too many are waiting already: refuse it (nothing was sent).
        case refuse(Item)
    }

    private var waiting: [Item] = []
    private var inFlight = false
    let limit: Int

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    var waitingCount: Int { self.waiting.count }

    mutating func submit(_ item: Item) -> SubmitAction {
        guard self.inFlight else {
            self.inFlight = true
            return .send([item])
        }
        guard self.waiting.count < self.limit else { return .refuse(item) }
        self.waiting.append(item)
        return .wait
    }

    /// The group in flight was answered: the next one to send, if any waited.
    mutating func answered() -> [Item]? {
        guard !self.waiting.isEmpty else {
            self.inFlight = false
            return nil
        }
        defer { self.waiting = [] }
        return self.waiting
    }
}
