import Foundation
import HiredisNIO
import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// A Redis Sentinel (`redis-server <config> --sentinel`) watching one master, on a free
/// loopback port, with a configuration file of its own (a sentinel rewrites it).
final class SentinelProcess: Sendable {
    let port: Int
    let pid: pid_t
    let directory: String

    /// - Parameters:
    ///   - password: the sentinel's own `requirepass`.
    ///   - masterPassword: what the sentinel authenticates to the master and replicas with.
    ///   - masterPort: the master's port to name (its TLS port, say); `master.port` without one.
    ///   - extraConfiguration: more lines for the sentinel's configuration file.
    init(
        monitoring master: RedisServerProcess,
        name: String = "fanfare",
        password: String? = nil,
        masterPassword: String? = nil,
        masterPort: Int? = nil,
        extraConfiguration: String = ""
    ) async throws {
        guard let executable = RedisServerProcess.executable else {
            throw TestFailure("redis-server is not installed; run scripts/install-dependencies.sh")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fanfare-sentinel-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.directory = directory
        var attempt = 0
        while true {
            attempt += 1
            let port = try RedisServerProcess.freePort()
            let path = "\(directory)/sentinel-\(port).conf"
            try """
            port \(port)
            bind 127.0.0.1
            dir \(directory)
            logfile \(directory)/sentinel-\(port).log
            sentinel resolve-hostnames no
            sentinel monitor \(name) 127.0.0.1 \(masterPort ?? master.port) 2
            sentinel down-after-milliseconds \(name) 1000
            sentinel failover-timeout \(name) 5000
            \(password.map { "requirepass \($0)" } ?? "")
            \(masterPassword.map { "sentinel auth-pass \(name) \($0)" } ?? "")
            \(extraConfiguration)

            """.write(toFile: path, atomically: true, encoding: .utf8)
            let pid = try RedisServerProcess.spawn([executable, path, "--sentinel"])
            do {
                try await RedisServerProcess.waitUntilReady(pid: pid, port: port, password: password)
                self.port = port
                self.pid = pid
                return
            } catch let error as RedisServerProcess.ServerExited where attempt < 5 {
                _ = error
                continue
            } catch {
                RedisServerProcess.signalAndReap(pid, SIGKILL)
                try? FileManager.default.removeItem(atPath: directory)
                throw error
            }
        }
    }

    func stop() {
        RedisServerProcess.signalAndReap(self.pid, SIGTERM)
        try? FileManager.default.removeItem(atPath: self.directory)
    }

    deinit { self.stop() }
}

extension RedisServerProcess {
    /// A server that replicas sync from at once (the default waits 5 s for more replicas).
    /// With `password`, clients and replicas must authenticate.
    static func primary(password: String? = nil) async throws -> RedisServerProcess {
        try await RedisServerProcess(arguments: ["--repl-diskless-sync-delay", "0"] + Self.credentials(password))
    }

    private static func credentials(_ password: String?) -> [String] {
        password.map { ["--requirepass", $0, "--masterauth", $0] } ?? []
    }

    /// A replica of `primary`, once it has finished its first sync (one that has not would
    /// be promoted empty, and acknowledges nothing).
    static func replica(of primary: RedisServerProcess, password: String? = nil) async throws -> RedisServerProcess {
        // Once promoted, it serves its own replicas at once too.
        let replica = try await RedisServerProcess(
            arguments: ["--replicaof", "127.0.0.1", "\(primary.port)", "--repl-diskless-sync-delay", "0"]
                + Self.credentials(password)
        )
        let configuration = RedisConfiguration(host: "127.0.0.1", port: replica.port, password: password)
        try await withDeadline(seconds: 20, "the replica to finish its first sync") {
            let connection = try await RedisConnection.connect(
                configuration: configuration,
                eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
                logger: Logger(label: "test")
            )
            while try await connection.send("INFO", "replication").string?.contains("master_link_status:up") != true {
                try await Task.sleep(for: .milliseconds(50))
            }
            await connection.close()
        }
        return replica
    }
}

/// One master, its replicas and three sentinels on loopback, ready to fail over.
struct SentinelTopology {
    let primary: RedisServerProcess
    let replicas: [RedisServerProcess]
    let sentinels: [SentinelProcess]
    var replica: RedisServerProcess { self.replicas[0] }

    /// With `password` the servers need it, and the sentinels need `sentinelPassword`.
    init(replicas count: Int = 1, password: String? = nil, sentinelPassword: String? = nil) async throws {
        let primary = try await RedisServerProcess.primary(password: password)
        var replicas: [RedisServerProcess] = []
        for _ in 0..<count { replicas.append(try await RedisServerProcess.replica(of: primary, password: password)) }
        var started: [SentinelProcess] = []
        for _ in 0..<3 {
            started.append(
                try await SentinelProcess(monitoring: primary, password: sentinelPassword, masterPassword: password)
            )
        }
        let sentinels = started
        (self.primary, self.replicas, self.sentinels) = (primary, replicas, sentinels)
        // A failover needs every sentinel to know the replica and the two other sentinels
        // (before that, a kill only aborts: "no good replica").
        try await withDeadline(seconds: 40, "the sentinels to know the replica and each other") {
            for sentinel in sentinels {
                while true {
                    let facts = try await Self.master(sentinel, password: sentinelPassword)
                    if facts["num-slaves"] == "\(count)", facts["num-other-sentinels"] == "2" { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
        }
    }

    /// `redis-sentinel://` for the three sentinels, optionally after one that is down.
    func url(after down: Int? = nil) -> String {
        let hosts = (down.map { [$0] } ?? []) + self.sentinels.map(\.port)
        return "redis-sentinel://" + hosts.map { "127.0.0.1:\($0)" }.joined(separator: ",") + "/fanfare"
    }

    /// What one sentinel says of the master (`SENTINEL master fanfare`).
    static func master(_ sentinel: SentinelProcess, password: String? = nil) async throws -> [String: String] {
        let connection = try await RedisConnection.connect(
            configuration: RedisConfiguration(host: "127.0.0.1", port: sentinel.port, password: password),
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
            logger: Logger(label: "test")
        )
        defer { Task { await connection.close() } }
        let reply = try await connection.send("SENTINEL", "master", "fanfare")
        let items = (reply.array ?? []).compactMap(\.string)
        var facts: [String: String] = [:]
        for index in stride(from: 0, to: items.count - 1, by: 2) { facts[items[index]] = items[index + 1] }
        return facts
    }

    func stop() {
        for sentinel in self.sentinels { sentinel.stop() }
        for replica in self.replicas { replica.stop() }
        self.primary.stop()
    }
}
