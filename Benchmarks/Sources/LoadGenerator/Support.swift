import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// Counts down from a start value, from any thread.
final class ManagedAtomicCounter: Sendable {
    private let value: Atomic<Int>
    init(_ start: Int) { self.value = Atomic(start) }
    /// Returns the value after decrementing.
    func decrement() -> Int { self.value.subtract(1, ordering: .relaxed).newValue }
}

/// Keep-alive publisher connections, one per lane, spread over the nodes.
final class Publisher: Sendable {
    private let channels: [any Channel]
    private let handlers: [NIOLoopBound<PublisherHandler>]
    private let hosts: [String]

    private init(channels: [any Channel], handlers: [NIOLoopBound<PublisherHandler>], hosts: [String]) {
        self.channels = channels
        self.handlers = handlers
        self.hosts = hosts
    }

    static func connect(targets: [Target], count: Int, group: any EventLoopGroup) async throws -> Publisher {
        var channels: [any Channel] = []
        var handlers: [NIOLoopBound<PublisherHandler>] = []
        var hosts: [String] = []
        for lane in 0..<count {
            let target = targets[lane % targets.count]
            let channel = try await ClientBootstrap(group: group)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(host: target.host, port: target.port).get()
            let handler = try await channel.eventLoop.submit {
                let handler = PublisherHandler()
                try channel.pipeline.syncOperations.addHandler(handler)
                return NIOLoopBound(handler, eventLoop: channel.eventLoop)
            }.get()
            channels.append(channel)
            handlers.append(handler)
            hosts.append(target.host)
        }
        return Publisher(channels: channels, handlers: handlers, hosts: hosts)
    }

    /// Sends one publish request (made by the ``Peer``) on `lane` and returns the HTTP status.
    func publish(lane: Int, request make: (_ host: String) -> String) async throws -> Int {
        let index = lane % self.channels.count
        let channel = self.channels[index]
        let handler = self.handlers[index]
        let request = ByteBuffer(string: make(self.hosts[index]))
        let promise = channel.eventLoop.makePromise(of: Int.self)
        channel.eventLoop.execute {
            guard let context = try? channel.pipeline.syncOperations.context(handlerType: PublisherHandler.self) else {
                promise.fail(ChannelError.ioOnClosedChannel)
                return
            }
            handler.value.send(context: context, request: request, promise: promise)
        }
        return try await promise.futureResult.get()
    }

    func close() async {
        for channel in self.channels { try? await channel.close() }
    }
}

/// Figures read from /proc.
enum ProcessStats {
    static func rssBytes(_ pid: Int32) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let kib = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
            return kib * 1024
        }
        return 0
    }

    /// utime + stime of a process, in seconds.
    static func cpuSeconds(_ pid: Int32) -> Double {
        let (user, system) = self.cpuSplit(pid)
        return user + system
    }

    /// utime and stime of a process, in seconds.
    static func cpuSplit(_ pid: Int32) -> (user: Double, system: Double) {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return (0, 0) }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the command: state is field 3; utime and stime are fields 14 and 15.
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return (0, 0) }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return (user / ticks, system / ticks)
    }

    static func selfCPUSeconds() -> Double {
        let (user, system) = self.usage(RUSAGE_SELF.rawValue)
        return user + system
    }

    /// The calling thread's user and system time.
    static func threadCPU() -> (user: Double, system: Double) {
        // RUSAGE_THREAD (Linux): Glibc's module leaves it out.
        self.usage(1)
    }

    private static func usage(_ who: __rusage_who_t) -> (user: Double, system: Double) {
        var usage = rusage()
        getrusage(who, &usage)
        return (
            Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6,
            Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        )
    }
}
