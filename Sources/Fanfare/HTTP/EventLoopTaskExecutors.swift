internal import NIOCore

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
