internal import NIOCore

/// Runs the jobs of a task on one event loop.
///
/// A route that answers asynchronously (a publish awaits Redis) runs its task with this
/// executor preferred, so the task starts on the connection's own loop and resumes there
/// after each await: no wake of a pool thread to start it, and none to hop back with the
/// answer. Its code only awaits, never blocks, so the loop stays free meanwhile.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        self.eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }

    func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }
}
