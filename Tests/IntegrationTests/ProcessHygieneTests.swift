import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// How the tests start and stop their child processes: a process group each (stopping a
/// child stops what it started), no `FANFARE_*` variables from the caller, and no signal to
/// a pid that was reaped.
@Suite(.timeLimit(.minutes(1)))
struct ProcessHygieneTests {
    @Test func stoppingAChildStopsWhatItStarted() async throws {
        let pid = try RedisServerProcess.spawn(["/bin/sh", "-c", "sleep 60 & sleep 60"])
        // The shell and its background sleep share the child's own process group.
        try await withDeadline("the shell to start its sleeps") {
            while Self.members(of: pid, running: "sleep 60") < 2 {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        #expect(getpgid(pid) == pid)
        RedisServerProcess.signalAndReap(pid, SIGKILL)
        try await withDeadline("the background sleep to be gone too") {
            while Glibc.kill(-pid, 0) == 0 { try await Task.sleep(for: .milliseconds(20)) }
        }
        // Reaped: a second stop signals nothing (the pid may belong to another process now).
        RedisServerProcess.signalAndReap(pid, SIGKILL)
    }

    /// A child dies with the process that started it, even when that one is killed and
    /// cannot stop it: here a lifeline of its own, closed by the test, stands for the end
    /// of the test process.
    @Test func aChildDiesWithItsParent() async throws {
        let lifeline = RedisServerProcess.makeLifeline()
        let child = try RedisServerProcess.spawn(["/bin/sleep", "60"], lifeline: lifeline.read)
        close(lifeline.read)
        try await Task.sleep(for: .milliseconds(200))
        var status: Int32 = 0
        #expect(waitpid(child, &status, WNOHANG) == 0, "the child ended while its parent lived")
        close(lifeline.write)
        try await withDeadline("the child to die with its parent") {
            var status: Int32 = 0
            while waitpid(child, &status, WNOHANG) != child { try await Task.sleep(for: .milliseconds(20)) }
            #expect(RedisServerProcess.exitCode(status) == 128 + SIGKILL)
        }
    }

    /// A server started on a port another server holds is never mistaken for it: the
    /// answer must come from the process that was started.
    @Test func aServerOnATakenPortIsNotTakenForTheOneStarted() async throws {
        let first = try await RedisServerProcess()
        for _ in 0..<3 {
            await #expect(throws: (any Error).self) { _ = try await RedisServerProcess(onPort: first.port) }
        }
        first.stop()
    }

    @Test func childrenDoNotInheritFanfareVariables() async throws {
        setenv("FANFARE_PUBLISHER_KEY_LEAK_TEST", "from-the-caller", 1)
        defer { unsetenv("FANFARE_PUBLISHER_KEY_LEAK_TEST") }
        #expect(!RedisServerProcess.childEnvironment().contains { $0.hasPrefix("FANFARE_") })
        #expect(RedisServerProcess.childEnvironment().contains { $0.hasPrefix("PATH=") })
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("env-\(UUID()).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let pid = try RedisServerProcess.spawn(["/usr/bin/env"], output: log)
        #expect(try await RedisServerProcess.waitForExit(pid, "env", within: .seconds(10)) == 0)
        let printed = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(printed.contains("PATH="))
        #expect(!printed.contains("FANFARE_"), "\(printed)")
    }

    /// How many processes of process group `group` run `command` (arguments space-separated).
    private static func members(of group: pid_t, running command: String) -> Int {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            guard getpgid(pid) == group, let line = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else {
                return false
            }
            return line.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
                == command
        }.count
    }
}
