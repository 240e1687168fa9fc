import ArgumentParser
import Foundation
import Histogram
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The machine's floor for broadcasting over loopback TCP: the same subscribers as every
/// other scenario (this generator's loops), served by no server at all but by plain
/// threads that `write(2)` one frame to each socket.
///
/// `--floor-writers` threads stand for the nodes. Each round, at its due time, a writer
/// builds one frame (`id:` and a `t` of the due time, padded like a published event) and
/// writes it to each of its sockets: no NIO, no HTTP parsing, no Redis, no allocation per
/// write. A server that writes one frame per delivery cannot spend less system time per
/// delivery than these writers do, nor deliver a round sooner on the same cores.
extension LoadGenerator {
    func runFloor(loops: [any EventLoop], stats: [LoopStats]) async throws {
        guard self.rate > 0, self.events > 0 else { throw ValidationError("--floor needs --rate and --events") }
        let listener = try FloorSocket.listen()
        defer { close(listener) }
        let target = try Target(url: "http://127.0.0.1:\(try FloorSocket.port(of: listener))")
        let writerCount = max(1, self.floorWriters)
        let accepted = Mutex<[[Int32]]>(Array(repeating: [], count: writerCount))

        // Accept on a plain thread (blocking is fine there) while the subscribers connect;
        // each socket gets a response head and `__connected` at once, as from a node.
        let connections = self.connections
        let acceptor = FloorThreads()
        acceptor.start {
            let greeting =
                Array("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n".utf8)
                + Array("event: __connected\ndata: {}\n\n".utf8)
            for index in 0..<connections {
                let fd = accept(listener, nil, nil)
                guard fd >= 0 else { return }
                FloorSocket.setNoDelay(fd)
                _ = greeting.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                accepted.withLock { $0[index % writerCount].append(fd) }
            }
        }
        let channels = try await self.connectAll(targets: [target], loops: loops, stats: stats, lastEventID: nil)
        await acceptor.wait()
        let sockets = accepted.withLock { $0 }
        defer { for fd in sockets.joined() { close(fd) } }
        guard sockets.joined().count == connections else { throw ValidationError("the floor accepted too few") }
        print("connections established: \(connections)")

        let start = LoadClock.nanoseconds() + 200_000_000
        let interval = Int64(1e9 / self.rate)
        let rounds = self.events
        let padding = String(repeating: "x", count: self.payloadBytes)
        let results = Mutex<[FloorWriterResult]>([])
        let selfBefore = ProcessStats.selfCPUSeconds()
        let writers = FloorThreads()
        for fds in sockets {
            writers.start {
                let result = FloorWriter(fds: fds).run(rounds: rounds, start: start, interval: interval) { round, due in
                    // The frame a node sends for a published event of this payload.
                    "id: \(due / 1_000_000)-\(round)\nevent: load\n"
                        + #"data: {"seq":\#(round),"t":\#(due),"pad":"\#(padding)"}"# + "\n\n"
                }
                results.withLock { $0.append(result) }
            }
        }
        await writers.wait()
        let expected = connections * rounds
        let deadline = LoadClock.nanoseconds() + 30_000_000_000
        while try await Self.total(stats, loops, { $0.delivered }) < expected, LoadClock.nanoseconds() < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let merged = try await Self.merge(stats, loops)
        // This process's CPU is the writers' plus the subscribers': the subscribers' share
        // is what is left after the writers' own.
        let written = results.withLock { $0 }
        let writes = written.reduce(0) { $0 + $1.writes }
        let user = written.reduce(0.0) { $0 + $1.user }
        let system = written.reduce(0.0) { $0 + $1.system }
        let subscriberCPU = ProcessStats.selfCPUSeconds() - selfBefore - user - system
        print(
            "floor: \(writerCount) writer threads, \(rounds) rounds at \(self.rate)/s, "
                + "\(written.reduce(0) { $0 + $1.failures }) short or failed writes"
        )
        print(
            "deliveries expected: \(expected), delivered: \(merged.delivered), missing: \(expected - merged.delivered)"
        )
        print("duplicates: \(merged.duplicates), out of order: \(merged.outOfOrder)")
        let latency = merged.latency
        print(
            "round due→receive latency ms: p50 \(Self.ms(latency.valueAtPercentile(50))), "
                + "p99 \(Self.ms(latency.valueAtPercentile(99))), max \(Self.ms(latency.max))"
        )
        print(
            "writer CPU: \(Self.micro(user + system, writes)) µs per write "
                + "(user \(Self.micro(user, writes)), system \(Self.micro(system, writes)))"
        )
        print("subscriber CPU: \(Self.micro(subscriberCPU, merged.delivered)) µs per delivery")
        for channel in channels { channel.close(promise: nil) }
    }
}

/// What one writer thread did, and its own CPU time.
struct FloorWriterResult: Sendable {
    var writes = 0
    var failures = 0
    var user = 0.0
    var system = 0.0
}

private struct FloorWriter {
    var fds: [Int32]

    func run(
        rounds: Int,
        start: Int64,
        interval: Int64,
        frame: (_ round: Int, _ due: Int64) -> String
    ) -> FloorWriterResult {
        var result = FloorWriterResult()
        var before = ProcessStats.threadCPU()
        for round in 0..<rounds {
            let due = start + Int64(round) * interval
            let wait = due - LoadClock.nanoseconds()
            if wait > 0 {
                var time = timespec(tv_sec: Int(wait / 1_000_000_000), tv_nsec: Int(wait % 1_000_000_000))
                nanosleep(&time, nil)
            }
            if round == 0 { before = ProcessStats.threadCPU() }
            let bytes = Array(frame(round, due).utf8)
            bytes.withUnsafeBytes { bytes in
                for fd in self.fds {
                    if write(fd, bytes.baseAddress, bytes.count) != bytes.count { result.failures += 1 }
                }
            }
            result.writes += self.fds.count
        }
        let after = ProcessStats.threadCPU()
        result.user = after.user - before.user
        result.system = after.system - before.system
        return result
    }
}

/// Plain threads for the floor, and a way to wait for all of them.
private final class FloorThreads: Sendable {
    private let group = DispatchGroup()

    func start(_ body: @escaping @Sendable () -> Void) {
        self.group.enter()
        let group = self.group
        Thread.detachNewThread {
            body()
            group.leave()
        }
    }

    func wait() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            self.group.notify(queue: .global()) { done.resume() }
        }
    }
}

private enum FloorSocket {
    static func listen() throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ValidationError("socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, Glibc.listen(fd, 4096) == 0 else { throw ValidationError("bind: errno \(errno)") }
        return fd
    }

    static func port(of fd: Int32) throws -> UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0 else { throw ValidationError("getsockname: errno \(errno)") }
        return UInt16(bigEndian: address.sin_port)
    }

    /// As the nodes do: each frame goes out as soon as it is written.
    static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }
}
