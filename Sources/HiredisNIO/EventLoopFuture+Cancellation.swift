internal import NIOCore
import Synchronization

extension EventLoopFuture where Value: Sendable {
    /// The future's value, or `CancellationError` as soon as the calling task is cancelled.
    ///
    /// A cancelled caller only stops waiting: the operation behind the future goes on and
    /// completes it as usual (a command's reply is still read, so the connection stays in
    /// step with Redis).
    func valueUnlessCancelled() async throws -> Value {
        let waiter = CancellableWaiter<Value>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Value, any Error>) in
                waiter.install(continuation)
                self.whenComplete { waiter.finish($0) }
            }
        } onCancel: {
            waiter.finish(.failure(CancellationError()))
        }
    }
}

/// Resumes one continuation exactly once, with whichever comes first: the future's result
/// or the cancellation.
private final class CancellableWaiter<Value: Sendable>: Sendable {
    private enum State {
        case idle
        case waiting(CheckedContinuation<Value, any Error>)
        /// Finished before the continuation was installed.
        case early(Result<Value, any Error>)
        case done
    }

    private let state = Mutex(State.idle)

    func install(_ continuation: CheckedContinuation<Value, any Error>) {
        let early = self.state.withLock { state -> Result<Value, any Error>? in
            switch state {
            case .idle:
                state = .waiting(continuation)
                return nil
            case .early(let result):
                state = .done
                return result
            case .waiting, .done:
                preconditionFailure("a continuation is installed once")
            }
        }
        if let early { continuation.resume(with: early) }
    }

    func finish(_ result: Result<Value, any Error>) {
        let continuation = self.state.withLock { state -> CheckedContinuation<Value, any Error>? in
            switch state {
            case .idle:
                state = .early(result)
                return nil
            case .waiting(let continuation):
                state = .done
                return continuation
            case .early, .done:
                return nil
            }
        }
        continuation?.resume(with: result)
    }
}
