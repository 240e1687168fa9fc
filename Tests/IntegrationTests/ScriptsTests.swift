import Foundation
import HiredisNIO
import Logging
import NIOCore
import NIOPosix
import ServerSentEvents
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The README's run command as a user runs it: `scripts/run.sh` brings up the local
/// cluster (through `Deploy/local-cluster.sh`) or one embedded node, a publish goes
/// through, and Ctrl-C stops everything it started. The fanfare executable the tests were
/// built with stands in for the release build (`FANFARE_BINARY`).
@Suite(.enabled(if: RedisServerProcess.enabled && NginxProcess.enabled), .timeLimit(.minutes(2)))
struct ScriptsTests {
    private static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// Whether anything accepts connections on `port`.
    private func answers(_ port: Int) async -> Bool {
        guard
            let channel = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(1)).connect(host: "127.0.0.1", port: port).get()
        else { return false }
        try? await channel.close()
        return true
    }

    private func waitForOutput(_ log: String, _ text: String, seconds: Int = 60) async throws -> String {
        try await withDeadline(seconds: seconds, "the script to print \(text)") {
            while true {
                let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                if output.contains(text) { return output }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    private func runScript(_ arguments: [String], log: String) throws -> pid_t {
        guard let executable = NodeProcess.executable else {
            throw TestFailure("the fanfare executable is not built next to the tests; run `swift build --build-tests`")
        }
        return try RedisServerProcess.spawn(
            ["/usr/bin/env", "FANFARE_BINARY=\(executable)", "bash", "scripts/run.sh"] + arguments,
            output: log,
            directory: Self.root
        )
    }

    @Test func theLocalClusterStartsServesThroughNginxAndCtrlCStopsEverything() async throws {
        let base = try RedisServerProcess.freePorts(5)
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("fanfare-run-\(UUID()).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let script = try self.runScript(["--port", "\(base)"], log: log)
        // Whatever happens, the script's group goes (its trap takes the rest down).
        defer { RedisServerProcess.signalAndReap(script, SIGINT) }
        let output = try await self.waitForOutput(log, "Ctrl-C stops everything.")
        #expect(output.contains("through nginx   http://127.0.0.1:\(base)"), "\(output)")
        let workdir = output.components(separatedBy: "(logs in ").dropFirst().first?.prefix { $0 != ")" } ?? ""
        #expect(FileManager.default.fileExists(atPath: String(workdir)), "\(output)")

        // The three nodes behind nginx: a stream through nginx gets a publish through nginx.
        let url = "http://127.0.0.1:\(base)"
        let stream = try await TestStream(url + "/api/sse/subscribe/script-alice")
        let connected = try await stream.connected()
        #expect(connected["data"]?.contains(#""nodeId":"node-"#) == true)
        let response = try await TestHTTPClient.request(
            "POST",
            url + "/api/sse/notify",
            body: #"{"clientId":"script-alice","event":"hello","payload":{"hi":1}}"#
        )
        #expect(response.status == 200, "\(response.body)")
        let event = try await stream.next()
        #expect(event.event == "hello")
        #expect(event.data == #"{"hi":1}"#)
        await stream.close()

        // Ctrl-C: the terminal signals the whole foreground process group.
        _ = Glibc.kill(-script, SIGINT)
        let code = try await RedisServerProcess.waitForExit(script, "scripts/run.sh", within: .seconds(30))
        #expect(code == 130, "exit \(code):\n\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        for port in base..<(base + 5) {
            #expect(await self.answers(port) == false, "something still answers on \(port)")
        }
        #expect(!FileManager.default.fileExists(atPath: String(workdir)), "\(workdir) was left behind")
    }

    /// `--sentinel`: the nodes follow a master that fails over. Killing the master stops
    /// publishing only until a replica is promoted, and Ctrl-C still stops everything.
    @Test func theLocalClusterWithSentinelSurvivesItsMasterAndCtrlCStopsEverything() async throws {
        let base = try RedisServerProcess.freePorts(10)
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("fanfare-run-\(UUID()).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let script = try self.runScript(["--port", "\(base)", "--sentinel"], log: log)
        defer { RedisServerProcess.signalAndReap(script, SIGINT) }
        let output = try await self.waitForOutput(log, "Ctrl-C stops everything.", seconds: 90)
        #expect(
            output.contains(
                "redis-sentinel://127.0.0.1:\(base + 7),127.0.0.1:\(base + 8),127.0.0.1:\(base + 9)/fanfare"
            )
        )
        let url = "http://127.0.0.1:\(base)"
        let client = ResumingClient(clientID: "script-sentinel", baseURL: url)
        try await withDeadline("the client to connect") {
            while client.nodes.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
        }
        let publisher = IntervalPublisher(url: url)
        try await publisher.waitForAcknowledged(more: 5)

        // The master, as the script started it: SIGKILL, as a crash would.
        let master = try await RedisConnection.connect(
            configuration: RedisConfiguration(host: "127.0.0.1", port: base + 4),
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
            logger: Logger(label: "test")
        )
        let info = try await master.send("INFO", "server").string ?? ""
        await master.close()
        let pid = try #require(
            info.split(separator: "\r\n").first { $0.hasPrefix("process_id:") }.flatMap { Int32($0.dropFirst(11)) }
        )
        _ = Glibc.kill(pid, SIGKILL)
        try await publisher.waitForRefusals(1)
        try await publisher.waitForAcknowledged(more: 10, seconds: 60)
        await publisher.stop()
        try await waitForDelivery([client], acknowledged: publisher.acknowledged, seconds: 30)
        try await expectEveryAcknowledgedEventKept(
            [client],
            acknowledged: publisher.acknowledged,
            redisURL: "redis-sentinel://127.0.0.1:\(base + 7),127.0.0.1:\(base + 8),127.0.0.1:\(base + 9)/fanfare"
        )
        await client.stop()

        _ = Glibc.kill(-script, SIGINT)
        let code = try await RedisServerProcess.waitForExit(script, "scripts/run.sh --sentinel", within: .seconds(30))
        #expect(code == 130, "exit \(code):\n\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        for port in base..<(base + 10) {
            #expect(await self.answers(port) == false, "something still answers on \(port)")
        }
    }

    /// `--redis-cluster`: three primaries with a replica each; a stream through nginx on
    /// channels of every primary gets what is published there, and Ctrl-C stops everything.
    @Test func theLocalClusterOnARedisClusterServesEveryShardAndCtrlCStopsEverything() async throws {
        // Ten ports, and the cluster bus ports of the six servers ten above theirs.
        let base = try RedisServerProcess.freePorts(20)
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("fanfare-run-\(UUID()).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let script = try self.runScript(["--port", "\(base)", "--redis-cluster"], log: log)
        defer { RedisServerProcess.signalAndReap(script, SIGINT) }
        let output = try await self.waitForOutput(log, "Ctrl-C stops everything.", seconds: 90)
        #expect(output.contains("redis-cluster://127.0.0.1:\(base + 4),127.0.0.1:\(base + 5),127.0.0.1:\(base + 6)"))
        let url = "http://127.0.0.1:\(base)"
        // Three channels, each in a slot of another primary (the script's first three).
        let client = RedisClient(
            configuration: try RedisConfiguration(url: "redis-cluster://127.0.0.1:\(base + 4)"),
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
            logger: Logger(label: "test")
        )
        let map = try await client.slotMap()
        await client.close()
        #expect(map.primaries.count == 3)
        let channels = try ClusterTopology.channels(onDistinctPrimariesOf: map, count: 3, prefix: "s")
        let stream = try await TestStream(url + "/api/sse/subscribe/shards?channels=" + channels.joined(separator: ","))
        _ = try await stream.connected()
        for channel in channels {
            let response = try await TestHTTPClient.request(
                "POST",
                url + "/api/sse/notify",
                body: #"{"channel":"\#(channel)","event":"on-\#(channel)"}"#
            )
            #expect(response.status == 200, "\(response.body)")
            #expect(try await stream.next().event == "on-\(channel)")
        }
        await stream.close()
        _ = Glibc.kill(-script, SIGINT)
        let code = try await RedisServerProcess.waitForExit(
            script,
            "scripts/run.sh --redis-cluster",
            within: .seconds(30)
        )
        #expect(code == 130, "exit \(code):\n\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        for port in base..<(base + 20) {
            #expect(await self.answers(port) == false, "something still answers on \(port)")
        }
    }

    /// A wrong option stops the script before it starts anything, with exit 2 and a
    /// sentence naming what is wrong.
    @Test(arguments: [
        (["--replica-acks", "x"], "--replica-acks takes a count of replicas (0 or more), not 'x'"),
        (["--replica-acks", "1"], "--replica-acks needs replicas: add --sentinel or --redis-cluster"),
        (["--sentinel", "--redis-cluster"], "--sentinel and --redis-cluster are two ways to run Redis: choose one"),
        (["--colour"], "unknown option --colour"),
    ])
    func aWrongOptionIsRefusedBeforeAnythingStarts(arguments: [String], message: String) async throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("fanfare-run-\(UUID()).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let script = try self.runScript(arguments, log: log)
        defer { RedisServerProcess.signalAndReap(script, SIGINT) }
        let code = try await RedisServerProcess.waitForExit(script, "scripts/run.sh \(arguments)", within: .seconds(30))
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(code == 2, "exit \(code):\n\(output)")
        #expect(output.contains(message), "\(output)")
        #expect(!output.contains("Fanfare cluster is up"))
    }

    @Test func anEmbeddedNodeStartsAndCtrlCStopsIt() async throws {
        let port = try RedisServerProcess.freePorts(1)
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("fanfare-run-\(UUID()).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let script = try self.runScript(["--embedded", "--host", "127.0.0.1", "--port", "\(port)"], log: log)
        defer { RedisServerProcess.signalAndReap(script, SIGINT) }
        let url = "http://127.0.0.1:\(port)"
        try await withDeadline(seconds: 60, "the embedded node to be ready") {
            while (try? await TestHTTPClient.request("GET", url + "/readyz").status) != 200 {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        let stream = try await TestStream(url + "/api/sse/subscribe/solo")
        _ = try await stream.connected()
        let response = try await TestHTTPClient.request(
            "POST",
            url + "/api/sse/notify",
            body: #"{"broadcast":true,"event":"solo"}"#
        )
        #expect(response.status == 200)
        #expect(try await stream.next().event == "solo")
        await stream.close()
        _ = Glibc.kill(-script, SIGINT)
        let code = try await RedisServerProcess.waitForExit(script, "scripts/run.sh --embedded", within: .seconds(30))
        #expect(code == 0, "exit \(code):\n\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        #expect(await self.answers(port) == false)
    }
}
