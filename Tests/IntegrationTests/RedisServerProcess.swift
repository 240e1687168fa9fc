import Foundation
import HiredisNIO
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A redis-server this test started, on a free loopback port, in its own temp dir.
///
/// Tests never touch a server they did not start. Under CI (`CI=true`) a missing
/// redis-server is a failure; elsewhere the tests that need it are skipped visibly.
/// The process is spawned with `posix_spawn` and reaped with `waitpid`.
final class RedisServerProcess: Sendable {
    let port: Int
    let pid: pid_t
    let directory: String
    /// False for a server restarted in another's directory: that one removes it.
    private let ownsDirectory: Bool

    static let executable: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let candidates =
            path.split(separator: ":").map { "\($0)/redis-server" } + [
                "/usr/bin/redis-server", "/usr/local/bin/redis-server",
            ]
        return candidates.first { access($0, X_OK) == 0 }
    }()

    static let isRequired = ProcessInfo.processInfo.environment["CI"] == "true"

    /// Tests that need a server run when one is installed, and always under CI (where
    /// they then fail loudly if it is missing).
    static let enabled = RedisServerProcess.executable != nil || RedisServerProcess.isRequired

    var url: String { "redis://127.0.0.1:\(self.port)" }
    var configuration: RedisConfiguration { RedisConfiguration(host: "127.0.0.1", port: self.port) }

    /// Starts a server. With `directory` it reuses that directory (and whatever data an
    /// append-only server left there), as a restarted server would.
    init(arguments: [String] = [], onPort port: Int? = nil, directory: String? = nil) async throws {
        guard let executable = Self.executable else {
            throw TestFailure("redis-server is not installed; run scripts/install-dependencies.sh")
        }
        self.ownsDirectory = directory == nil
        self.directory =
            directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("fanfare-redis-\(UUID())").path
        try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
        // A port found free can be taken before the server binds it; then the server
        // exits at once and we try another port.
        var attempt = 0
        while true {
            attempt += 1
            let candidate = try port ?? Self.freePort()
            let argv =
                [
                    executable, "--port", "\(candidate)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--dir", self.directory, "--logfile", "\(self.directory)/redis.log",
                ] + arguments
            let pid = try Self.spawn(argv)
            do {
                let password = arguments.firstIndex(of: "--requirepass").flatMap {
                    arguments.indices.contains($0 + 1) ? arguments[$0 + 1] : nil
                }
                try await Self.waitUntilReady(pid: pid, port: candidate, password: password)
                self.port = candidate
                self.pid = pid
                return
            } catch let error as ServerExited where port == nil && attempt < 5 {
                _ = error
                continue
            } catch {
                Self.signalAndReap(pid, SIGKILL)
                try? FileManager.default.removeItem(atPath: self.directory)
                throw error
            }
        }
    }

    /// Spawns `argv` with a clean signal mask and none of this process's descriptors;
    /// stdout and stderr go to `output` (or nowhere). With `directory` it runs there.
    ///
    /// The child dies with this process, even when this process crashes or is killed: a
    /// watcher in the child's process group waits on `lifeline`, the read end of a pipe
    /// whose write end only this process holds, and kills the group when it reads the end.
    /// (The kernel's parent-death signal follows the spawning thread, not the process, so
    /// it would fire when a pool thread retires.)
    static func spawn(
        _ command: [String],
        output: String = "/dev/null",
        directory: String? = nil,
        lifeline: Int32 = RedisServerProcess.lifeline.read
    ) throws -> pid_t {
        // A shell closes every descriptor it inherited but the standard three and the
        // lifeline (a socket another thread opened while this one spawned would otherwise
        // stay open in the child, and a client's close would never reach its server),
        // starts the watcher, changes directory (glibc's posix_spawn has no portable
        // chdir), then execs the command, which keeps the pid.
        let script = #"""
            lifeline=$1; directory=$2; shift 2
            for fd in /proc/self/fd/*; do
                fd=${fd##*/}
                [ "$fd" -gt 2 ] 2>/dev/null && [ "$fd" != "$lifeline" ] && eval "exec $fd>&-" 2>/dev/null
            done
            (read -r _ <&"$lifeline"; kill -KILL 0) </dev/null >/dev/null 2>&1 &
            eval "exec $lifeline<&-"
            if [ -n "$directory" ]; then cd "$directory" || exit 127; fi
            exec "$@"
            """#
        let argv = ["/bin/bash", "-c", script, "bash", "\(lifeline)", directory ?? ""] + command
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // The child must not inherit this process's sockets (a node's listening socket
        // held open by nginx or Redis would keep accepting after the node stopped).
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for fd in open.compactMap({ Int32($0) }) where fd > 2 && fd != lifeline {
            posix_spawn_file_actions_addclose(&actions, fd)
        }
        // Test threads (dispatch workers) block signals and posix_spawn passes the mask
        // on; the server must start with every signal unblocked and at its default.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        // A process group of its own: stopping it stops what it started (nginx's workers,
        // a shell's child) too.
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes,
            Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP)
        )
        var cArguments = argv.map { strdup($0) } + [nil]
        defer { for argument in cArguments { free(argument) } }
        // A clean environment: a FANFARE_* variable exported where the tests run must not
        // change the nodes they start (a test passes its own through /usr/bin/env).
        var environment = Self.childEnvironment().map { strdup($0) } + [nil]
        defer { for variable in environment { free(variable) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, argv[0], &actions, &attributes, &cArguments, &environment)
        guard status == 0 else { throw TestFailure("posix_spawn \(argv[0]) failed: \(status)") }
        return pid
    }

    /// A pipe whose write end only this process holds (it closes on exec): children
    /// read its end of file when this process is gone.
    static let lifeline: (read: Int32, write: Int32) = RedisServerProcess.makeLifeline()

    static func makeLifeline() -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return (-1, -1) }
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        return (fds[0], fds[1])
    }

    /// This process's environment without the `FANFARE_` variables.
    static func childEnvironment() -> [String] {
        var variables: [String] = []
        var entry = environ
        while let pointer = entry.pointee {
            let variable = String(cString: pointer)
            if !variable.hasPrefix("FANFARE_") { variables.append(variable) }
            entry += 1
        }
        return variables
    }

    /// The exit code of a `waitpid` status (128 + the signal when a signal ended it).
    static func exitCode(_ status: Int32) -> Int32 {
        (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// Waits for a spawned tool to exit and returns its exit code; kills it and fails
    /// after `limit`.
    static func waitForExit(_ pid: pid_t, _ what: String, within limit: Duration) async throws -> Int32 {
        let deadline = ContinuousClock.now + limit
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) != pid {
            guard ContinuousClock.now < deadline else {
                Glibc.kill(-pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                throw TestFailure("\(what) did not finish within \(limit)")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        return Self.exitCode(status)
    }

    /// Stops the server (SIGTERM), reaps it and removes its directory. Safe to call twice.
    func stop() {
        self.signalAndReap(SIGTERM)
        if self.ownsDirectory { try? FileManager.default.removeItem(atPath: self.directory) }
    }

    /// Stops the server (SIGTERM: an append-only server writes its log out) and keeps its
    /// directory for a restart.
    func stopKeepingData() {
        self.signalAndReap(SIGTERM)
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    func kill() {
        self.signalAndReap(SIGKILL)
    }

    private func signalAndReap(_ signal: Int32) {
        Self.signalAndReap(self.pid, signal)
    }

    /// Signals a child's process group and reaps the child. A child that has exited is
    /// only reaped: a pid is never signalled once it may have been reaped (and reused).
    /// A child still running 10 s after a gentler signal gets SIGKILL.
    static func signalAndReap(_ pid: pid_t, _ signal: Int32) {
        var status: Int32 = 0
        // 0: still running and ours; the pid (it had exited, now reaped) or -1 (reaped before).
        guard waitpid(pid, &status, WNOHANG) == 0 else { return }
        _ = Glibc.kill(-pid, signal)
        if signal != SIGKILL {
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                guard waitpid(pid, &status, WNOHANG) == 0 else { return }
                usleep(10_000)
            }
            _ = Glibc.kill(-pid, SIGKILL)
        }
        _ = waitpid(pid, &status, 0)
    }

    deinit { self.stop() }

    /// The server exited at start, or another server held its port: try another port.
    struct ServerExited: Error, CustomStringConvertible {
        var description: String
    }

    /// Waits until the server answers, and checks that the server answering is the one
    /// started (its `process_id`), not another that holds the port.
    static func waitUntilReady(pid: pid_t, port: Int, password: String?) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                throw ServerExited(description: "redis-server exited at start on port \(port)")
            }
            if let connection = try? await RedisConnection.connect(
                configuration: RedisConfiguration(host: "127.0.0.1", port: port, password: password),
                eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
                logger: Logger(label: "test")
            ) {
                let reply = try? await connection.sendFuture("INFO", arguments: ["server"]).get()
                await connection.close()
                if let info = reply?.string {
                    guard info.contains("\r\nprocess_id:\(pid)\r\n") else {
                        Self.signalAndReap(pid, SIGKILL)
                        throw ServerExited(description: "another Redis answers on port \(port), not pid \(pid)")
                    }
                    return
                }
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestFailure("redis-server did not start on port \(port)")
    }

    private static let handedOut = Mutex(Set<Int>())

    /// A free loopback port below the kernel's ephemeral range, never the same one twice
    /// in this process. Staying out of the ephemeral range means no outgoing connection
    /// can be holding the port (or connect to itself on it) before the server binds it.
    static func freePort() throws -> Int {
        for _ in 0..<1_000 {
            let port = Int.random(in: 20_000..<32_000)
            guard Self.handedOut.withLock({ $0.insert(port).inserted }) else { continue }
            if Self.isFree(port) { return port }
        }
        throw TestFailure("no free port found")
    }

    /// `count` consecutive free loopback ports in the same range, none of them handed out
    /// before in this process (a script that derives its ports from a base port must not
    /// meet a server another test is about to start).
    static func freePorts(_ count: Int) throws -> Int {
        for _ in 0..<1_000 {
            let base = Int.random(in: 20_000..<(32_000 - count))
            let range = base..<(base + count)
            let reserved = Self.handedOut.withLock { handedOut in
                guard handedOut.isDisjoint(with: range) else { return false }
                handedOut.formUnion(range)
                return true
            }
            guard reserved else { continue }
            if range.allSatisfy(Self.isFree) { return base }
        }
        throw TestFailure("no \(count) consecutive free ports")
    }

    private static func isFree(_ port: Int) -> Bool {
        guard
            let channel = try? ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .bind(host: "127.0.0.1", port: port).wait()
        else { return false }
        try? channel.close().wait()
        return true
    }

    /// A loopback port where nothing listens, held bound (not listening) until released.
    static func closedPort() throws -> (port: Int, release: () -> Void) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                bind(fd, raw, length) == 0 && getsockname(fd, raw, &length) == 0
            }
        }
        guard bound else {
            close(fd)
            throw TestFailure("bind() failed")
        }
        return (Int(UInt16(bigEndian: address.sin_port)), { close(fd) })
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs `body`, failing if it takes longer than `seconds` (a hang guard, not a timing
/// assertion). A body that ignores cancellation is abandoned rather than awaited.
func withDeadline<T: Sendable>(
    seconds: Int = 10,
    _ what: String,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let once = Once()
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        let work = Task {
            let result: Result<T, any Error>
            do {
                result = .success(try await body())
            } catch {
                result = .failure(error)
            }
            if once.claim() { continuation.resume(with: result) }
        }
        Task {
            try? await Task.sleep(for: .seconds(seconds))
            if once.claim() {
                work.cancel()
                continuation.resume(throwing: TestFailure("timed out after \(seconds) s waiting for \(what)"))
            }
        }
    }
}

/// True for the first caller of ``claim()`` only.
final class Once: Sendable {
    private let done = Mutex(false)
    func claim() -> Bool {
        self.done.withLock { done in
            defer { done = true }
            return !done
        }
    }
}
