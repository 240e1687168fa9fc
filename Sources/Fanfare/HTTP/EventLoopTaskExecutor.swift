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

/// One ``EventLoopTaskExecutor`` per loop of a group, made once: a task does not keep
/// its preferred executor alive, so they live as long as the node.
struct EventLoopTaskExecutors: Sendable {
    private let executors: [ObjectIdentifier: EventLoopTaskExecutor]

    init(group: any EventLoopGroup) {
        var executors: [ObjectIdentifier: EventLoopTaskExecutor] = [:]
        for eventLoop in group.makeIterator() {
            executors[ObjectIdentifier(eventLoop)] = EventLoopTaskExecutor(eventLoop)
        }
        self.executors = executors
    }

    /// The executor of `eventLoop`, or `nil` for a loop of another group.
    func executor(for eventLoop: any EventLoop) -> EventLoopTaskExecutor? {
        self.executors[ObjectIdentifier(eventLoop)]
    }
}
