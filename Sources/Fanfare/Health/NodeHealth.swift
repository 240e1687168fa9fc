import Synchronization

/// What the node's delivery check found, for `/readyz`, `/metrics`, the registry row and
/// the stream routes to read from any thread.
final class NodeHealth: Sendable {
    enum Delivery: String, Sendable {
        /// No check: an embedded node delivers in process.
        case off
        /// No probe has come back yet.
        case unproven
        case ok
        case stalled
    }

    private struct State {
        var delivery: Delivery
        var reason: String?
        var refusesStreams = false
        /// The fewest replicas any primary has, once checked.
        var replicasFound: Int?
    }

    /// Replicas a publish waits for (`--replica-acks`); 0 when publishes wait for none.
    let replicasWanted: Int

    private let state: Mutex<State>

    init(checked: Bool, replicasWanted: Int = 0) {
        self.state = Mutex(State(delivery: checked ? .unproven : .off))
        self.replicasWanted = replicasWanted
    }

    /// The fewest replicas a primary has, as last checked (`nil` before the first check).
    var replicasFound: Int? { self.state.withLock { $0.replicasFound } }

    /// The replicas could not be counted: `/readyz` says unknown rather than an old count.
    func forgetReplicas() {
        self.state.withLock { $0.replicasFound = nil }
    }

    /// Records a check of the replicas; returns whether the node went short of them (or
    /// back), so that the change is logged once.
    func updateReplicas(found: Int) -> Bool {
        self.state.withLock { state in
            let wasShort = state.replicasFound.map { $0 < self.replicasWanted }
            state.replicasFound = found
            return wasShort != (found < self.replicasWanted)
        }
    }

    var delivery: Delivery { self.state.withLock { $0.delivery } }

    /// Why delivery is not proven, when it is not.
    var reason: String? { self.state.withLock { $0.reason } }

    /// Whether delivery allows the node to be ready.
    var isDelivering: Bool {
        switch self.delivery {
        case .off, .ok: true
        case .unproven, .stalled: false
        }
    }

    /// The node handed its streams over: new ones are refused (503) so that a proxy sends
    /// them to another node, until delivery works again.
    var refusesStreams: Bool { self.state.withLock { $0.refusesStreams } }

    func update(_ delivery: Delivery, reason: String?) {
        self.state.withLock { state in
            state.delivery = delivery
            state.reason = reason
            if delivery != .stalled { state.refusesStreams = false }
        }
    }

    func refuseStreams() {
        self.state.withLock { state in
            if state.delivery == .stalled { state.refusesStreams = true }
        }
    }
}
