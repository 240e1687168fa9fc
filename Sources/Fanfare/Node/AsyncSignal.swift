import Synchronization

/// A value that becomes known once (a listener's address, "the bus is connected"), for
/// any number of tasks to wait for.
///
/// ``wait()`` returns as soon as the signal is set, throws if it failed, and throws
/// `CancellationError` when the waiting task is cancelled first.
final class AsyncSignal<Value: Sendable>: Sendable {
    private enum State {
        case pending(waiters: [Int: CheckedContinuation<Value, any Error>], nextID: Int)
        case done(Result<Value, any Error>)
    }

    private let state = Mutex(State.pending(waiters: [:], nextID: 0))

    /// Sets the value and wakes every waiter; later calls change nothing.
    func succeed(_ value: Value) {
        self.finish(.success(value))
    }

    /// Fails every waiter, now and later; later calls change nothing.
    func fail(_ error: any Error) {
        self.finish(.failure(error))
    }

    func wait() async throws -> Value {
        let id = self.state.withLock { state -> Int in
            guard case .pending(let waiters, let nextID) = state else { return -1 }
            state = .pending(waiters: waiters, nextID: nextID + 1)
            return nextID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Value, any Error>) in
                let now = self.state.withLock { state -> Result<Value, any Error>? in
                    switch state {
                    case .done(let result):
                        return result
                    case .pending(var waiters, let nextID):
                        // Checked under the lock: a cancellation handler that ran before
                        // this point found no waiter to resume.
                        if Task.isCancelled { return .failure(CancellationError()) }
                        waiters[id] = continuation
                        state = .pending(waiters: waiters, nextID: nextID)
                        return nil
                    }
                }
                if let now { continuation.resume(with: now) }
            }
        } onCancel: {
            let waiter = self.state.withLock { state -> CheckedContinuation<Value, any Error>? in
                guard case .pending(var waiters, let nextID) = state, let waiter = waiters.removeValue(forKey: id)
                else {
                    return nil
                }
                state = .pending(waiters: waiters, nextID: nextID)
                return waiter
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    private func finish(_ result: Result<Value, any Error>) {
        let waiters = self.state.withLock { state -> [CheckedContinuation<Value, any Error>] in
            guard case .pending(let waiters, _) = state else { return [] }
            state = .done(result)
            return Array(waiters.values)
        }
        for waiter in waiters { waiter.resume(with: result) }
    }
}
