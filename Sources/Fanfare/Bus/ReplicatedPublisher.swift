internal import HiredisNIO
internal import NIOCore

/// Publishes that replicas must confirm, on connections of their own (one per primary, on
/// one event loop), each group followed by one `WAIT`: Redis answers nothing else on a
/// connection while its `WAIT` blocks, so reads, head reads and the registry, which use
/// the loop's other connections, never wait behind it. ``GroupCommitStateMachine`` groups
/// what arrives while a `WAIT` is out.
///
/// `WAIT` counts the replicas that have everything the connection wrote so far, so every
/// publish it confirms went out on the same connection before it (an idempotent retry
/// that publishes nothing writes its key again for that reason, see `fanfare.lua`).
final class ReplicatedPublisher: Sendable {
    typealias Replies = [RedisClient.Reply]

    private struct Entry {
        let commands: [RedisClient.Command]
        let promise: EventLoopPromise<Replies>
    }

    let client: RedisClient
    private let wait: (command: String, arguments: [RESPArgument])
    private let machine: NIOLoopBoundBox<GroupCommitStateMachine<Entry>>
    /// Runs each group's task on the connections' loop, where the replies are read.
    private let executor: EventLoopTaskExecutor

    /// - Parameters:
    ///   - client: connections used for these publishes only.
    ///   - replicas: how many must confirm; `timeout`: how long `WAIT` waits for them.
    ///   - limit: publishes that may wait for the next group; past it they are refused.
    init(client: RedisClient, replicas: Int, timeout: TimeAmount, limit: Int = 4_096) {
        self.client = client
        self.wait = ("WAIT", [RESPArgument(replicas), RESPArgument(Int(timeout.nanoseconds / 1_000_000))])
        self.machine = .makeBoxSendingValue(GroupCommitStateMachine(limit: limit), eventLoop: client.eventLoop)
        self.executor = EventLoopTaskExecutor(client.eventLoop)
    }

    var eventLoop: any EventLoop { self.client.eventLoop }

    /// Sends `commands` (pipelined, per primary) with the `WAIT` of their group; each
    /// reply carries the `WAIT`'s answer from the connection it ran on. A publish refused
    /// because too many wait fails as ``RedisClientError/Code/notSent``.
    func send(_ commands: [RedisClient.Command]) async -> Replies {
        let promise = self.eventLoop.makePromise(of: Replies.self)
        let entry = Entry(commands: commands, promise: promise)
        if self.eventLoop.inEventLoop {
            self.submit(entry)
        } else {
            self.eventLoop.execute { self.submit(entry) }
        }
        do {
            return try await promise.futureResult.get()
        } catch {
            return commands.map { _ in RedisClient.Reply(result: .failure(error), trailer: nil) }
        }
    }

    private func submit(_ entry: Entry) {
        switch self.machine.value.submit(entry) {
        case .send(let group):
            self.send(group: group)
        case .wait:
            break
        case .refuse(let entry):
            entry.promise.fail(
                RedisClientError(.notSent, "too many publishes are waiting for replicas to confirm earlier ones")
            )
        }
    }

    private func send(group: [Entry]) {
        let client = self.client
        let wait = self.wait
        // From the loop into the client's async pipeline: the task is the bridge, on the
        // same loop.
        Task(executorPreference: self.executor) {
            let replies = await client.replies(to: group.flatMap(\.commands), trailer: wait)
            self.eventLoop.execute {
                var start = replies.startIndex
                for entry in group {
                    let end = start + entry.commands.count
                    entry.promise.succeed(Array(replies[start..<end]))
                    start = end
                }
                if let next = self.machine.value.answered() { self.send(group: next) }
            }
        }
    }
}
