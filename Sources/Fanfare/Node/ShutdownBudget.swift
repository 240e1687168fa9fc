import Synchronization

/// The time a graceful drain may take (``FanfareConfiguration/drainTimeout``), shared by
/// the services that drain one after another.
final class ShutdownBudget: Sendable {
    let total: Duration
    private let clock = ContinuousClock()
    private let started = Mutex<ContinuousClock.Instant?>(nil)

    init(total: Duration) {
        self.total = total
    }

    /// Marks the start of the drain (the first call counts).
    func start() {
        let now = self.clock.now
        self.started.withLock { started in
            if started == nil { started = now }
        }
    }

    /// How long the drain has taken so far; zero before it started.
    var elapsed: Duration {
        guard let started = self.started.withLock({ $0 }) else { return .zero }
        return self.clock.now - started
    }

    /// What is left of the budget (never negative).
    var remaining: Duration {
        max(.zero, self.total - self.elapsed)
    }
}
