import Fanfare
import FanfareAPI
import Foundation
import ServerSentEvents
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The `fanfare` command as a user runs it: `publish`, `cluster` and `tail` against a
/// node over plain HTTP and, through nginx with a self-signed certificate, over HTTPS;
/// `publish --redis`, `token` and `tail --last-event-id`; settings from the environment;
/// a bad setting refused with a sentence.
@Suite(.enabled(if: NginxProcess.enabled), .timeLimit(.minutes(2)))
struct CLITests {
    /// Runs `fanfare <arguments>` to its end; its exit code and output (stdout + stderr).
    private func fanfare(
        _ arguments: [String],
        environment: [String] = []
    ) async throws -> (code: Int32, output: String) {
        guard let executable = NodeProcess.executable else {
            throw TestFailure("the fanfare executable is not built next to the tests; run `swift build --build-tests`")
        }
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("fanfare-cli-\(UUID()).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let pid = try RedisServerProcess.spawn(["/usr/bin/env"] + environment + [executable] + arguments, output: log)
        let code = try await RedisServerProcess.waitForExit(
            pid,
            "fanfare \(arguments.first ?? "")",
            within: .seconds(30)
        )
        return (code, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    /// A self-signed certificate for 127.0.0.1, made with openssl in `directory`.
    private func certificate(in directory: String) async throws -> (certificate: String, key: String) {
        let certificate = directory + "/cert.pem"
        let key = directory + "/key.pem"
        let pid = try RedisServerProcess.spawn(
            [
                "/usr/bin/env", "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-days", "1", "-subj", "/CN=fanfare-test", "-addext", "subjectAltName=IP:127.0.0.1",
                "-keyout", key, "-out", certificate,
            ]
        )
        #expect(try await RedisServerProcess.waitForExit(pid, "openssl", within: .seconds(30)) == 0)
        return (certificate, key)
    }

    @Test func publishClusterAndTailWorkOverHTTPAndHTTPS() async throws {
        let harness = try await NodeHarness(nodes: 1, embedded: true)
        let node = harness.urls[0].replacingOccurrences(of: "http://", with: "")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fanfare-tls-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let tls = try await self.certificate(in: directory)
        let nginx = try await NginxProcess(nodes: [node, node, node], tls: tls)
        let https = try #require(nginx.tlsURL)

        // tail over TLS, in the background, printing each event as a line.
        guard let executable = NodeProcess.executable else { throw TestFailure("fanfare is not built") }
        let tailLog = directory + "/tail.log"
        let tail = try RedisServerProcess.spawn(
            [executable, "tail", "--cacert", tls.certificate, https + "/api/sse/subscribe/cli-tail"],
            output: tailLog
        )
        // Stopped once: by the test before nginx, or here if the test fails first.
        let tailStopped = Once()
        defer { if tailStopped.claim() { RedisServerProcess.signalAndReap(tail, SIGKILL) } }
        try await harness.waitForConnections(1)

        let published = try await self.fanfare([
            "publish", "--node", https, "--cacert", tls.certificate, "--client", "cli-tail", "--event", "greeting",
            "--payload", #"{"n": 1}"#,
        ])
        #expect(published.code == 0, "\(published.output)")
        let answer = try APIJSON.decode(NotifyAnswer.self, from: Array(published.output.utf8))
        #expect(answer.sent && answer.connections == 1 && answer.clientId == "cli-tail")
        // tail prints `[event id=<cursor>] data`; the cursor holds the event's position.
        try await withDeadline("tail to print the event") {
            while true {
                let lines = ((try? String(contentsOfFile: tailLog, encoding: .utf8)) ?? "").split(separator: "\n")
                let printed = lines.first { $0.hasPrefix("[greeting id=") && $0.hasSuffix("] {\"n\":1}") }
                if let printed {
                    let id = printed.dropFirst("[greeting id=".count).prefix { $0 != "]" }
                    #expect(TestCursor.position(String(id), "client:cli-tail") == answer.id)
                    return
                }
                try await Task.sleep(for: .milliseconds(20))
            }
        }

        let cluster = try await self.fanfare(["cluster", "--node", https, "--cacert", tls.certificate])
        #expect(cluster.code == 0, "\(cluster.output)")
        #expect(cluster.output.hasPrefix("NODE"))
        #expect(cluster.output.contains("DELIVERING"), "\(cluster.output)")
        #expect(cluster.output.contains("1 nodes, 1 connections, 1 clients, 1 per client"), "\(cluster.output)")

        // The node's address and certificate from the environment, as the README says.
        let fromEnvironment = try await self.fanfare(
            ["publish", "--broadcast", "--event", "env"],
            environment: ["FANFARE_URL=\(https)", "FANFARE_CACERT=\(tls.certificate)"]
        )
        #expect(fromEnvironment.code == 0, "\(fromEnvironment.output)")
        #expect(fromEnvironment.output.contains(#""sent":true"#))

        // Without the certificate the TLS handshake is refused: nothing is published.
        let untrusted = try await self.fanfare(["publish", "--node", https, "--broadcast", "--event", "untrusted"])
        #expect(untrusted.code != 0)
        #expect(untrusted.output.contains("no answer from \(https)/api/sse/notify"), "\(untrusted.output)")
        #expect(untrusted.output.contains("CERTIFICATE_VERIFY_FAILED"), "\(untrusted.output)")

        // Plain HTTP straight to the node.
        let plain = try await self.fanfare(["publish", "--node", harness.urls[0], "--broadcast", "--event", "plain"])
        #expect(plain.code == 0, "\(plain.output)")

        let tailed = (try? String(contentsOfFile: tailLog, encoding: .utf8)) ?? ""
        try await withDeadline("tail to print the plain event") {
            while !((try? String(contentsOfFile: tailLog, encoding: .utf8)) ?? "").contains("[plain id=") {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        #expect(tailed.hasPrefix("[__connected id="), "\(tailed)")
        #expect(!tailed.contains("[untrusted"))
        // The stream first: nginx waits for open streams before it stops.
        if tailStopped.claim() { RedisServerProcess.signalAndReap(tail, SIGKILL) }
        nginx.stop()
        await harness.stop()
    }

    @Test func publishBatchSendsAFileOfEventsInOrderInBatchesOfTheGivenSize() async throws {
        let harness = try await NodeHarness(nodes: 1, embedded: true)
        let stream = try await TestStream(harness.urls[0] + "/api/sse/subscribe/cli-batch")
        _ = try await stream.connected()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fanfare-batch-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/events.jsonl"
        let lines = (0..<5).map { #"{"clientId":"cli-batch","event":"token","payload":{"i":\#($0)}}"# }
        try (lines.joined(separator: "\n") + "\n\n").write(toFile: file, atomically: true, encoding: .utf8)

        let published = try await self.fanfare([
            "publish", "--node", harness.urls[0], "--batch", file, "--batch-size", "2",
        ])
        #expect(published.code == 0, "\(published.output)")
        // One answer per request: 2 + 2 + 1 events.
        let answers = try published.output.split(separator: "\n").map {
            try APIJSON.decode([NotifyAnswer].self, from: Array($0.utf8))
        }
        #expect(answers.map(\.count) == [2, 2, 1], "\(published.output)")
        var received: [String] = []
        for _ in 0..<5 { received.append(try await stream.next().data ?? "") }
        #expect(received == (0..<5).map { #"{"i":\#($0)}"# })

        // A bad line refuses its batch, and nothing after it goes out.
        let bad = directory + "/bad.jsonl"
        try [lines[0], #"{"clientId":"cli-batch","event":"__reserved"}"#, lines[1]].joined(separator: "\n")
            .write(toFile: bad, atomically: true, encoding: .utf8)
        let refused = try await self.fanfare(["publish", "--node", harness.urls[0], "--batch", bad])
        #expect(refused.code == 1)
        #expect(refused.output.contains("item 1"), "\(refused.output)")
        _ = try await harness.notify(0, #"{"clientId":"cli-batch","event":"marker"}"#)
        let marker = try await stream.next()
        #expect(marker.event == "marker")
        await stream.close()
        await harness.stop()
    }

    /// `fanfare token` mints what the node accepts (with its audience), `publish --redis`
    /// makes the same function call a service makes, and `tail --last-event-id` resumes.
    @Test(.enabled(if: RedisServerProcess.enabled))
    func tokenPublishThroughRedisAndTailFromAnIdWork() async throws {
        let secret = "cli-secret-0123456789abcdef0123456789"
        let harness = try await NodeHarness(nodes: 1) { configuration in
            configuration.security = SecurityConfiguration(jwtSecret: secret, audience: "fanfare-cli")
        }
        let redis = try #require(harness.redis)
        let minted = try await self.fanfare(
            [
                "token", "--sub", "42", "--channels", "orders.*", "--ttl", "10m", "--aud", "fanfare-cli",
            ],
            environment: ["FANFARE_JWT_SECRET=\(secret)"]
        )
        #expect(minted.code == 0, "\(minted.output)")
        let token = minted.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(token.split(separator: ".").count == 3, "\(minted.output)")
        let withoutAudience = try await self.fanfare(["token", "--secret", secret, "--sub", "42"])
        let stream = harness.urls[0] + "/api/notifications/stream?channels=orders.eu&token="
        let refused = try await TestHTTPClient.request(
            "GET",
            stream + withoutAudience.output.trimmingCharacters(in: .whitespacesAndNewlines)
        )
        #expect(refused.status == 401)
        let watcher = try await TestStream(stream + token)
        _ = try await watcher.connected()

        var positions: [String] = []
        for (index, target) in [["--user", "42"], ["--channel", "orders.eu"]].enumerated() {
            let published = try await self.fanfare(
                ["publish", "--redis", redis.url] + target + ["--event", "r\(index)", "--payload", #"{"i":\#(index)}"#]
            )
            #expect(published.code == 0, "\(published.output)")
            let event = try await watcher.next()
            #expect(event.event == "r\(index)")
            #expect(event.data == #"{"i":\#(index)}"#)
            positions.append(event.id ?? "")
        }
        await watcher.close()
        // A bad id is refused before anything is sent.
        let bad = try await self.fanfare(["publish", "--redis", redis.url, "--user", "a:b", "--event", "x"])
        #expect(bad.code != 0 && bad.output.contains("ids must not be empty or contain ':'"), "\(bad.output)")

        // tail from the first event's id prints the second, and nothing before it.
        guard let executable = NodeProcess.executable else { throw TestFailure("fanfare is not built") }
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("fanfare-tail-\(UUID()).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let tail = try RedisServerProcess.spawn(
            [executable, "tail", "--last-event-id", positions[0], stream + token],
            output: log
        )
        defer { RedisServerProcess.signalAndReap(tail, SIGKILL) }
        try await withDeadline("tail to print the missed event") {
            while !((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("[r1 id=") {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        let printed = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(!printed.contains("[r0 "), "\(printed)")
        #expect(printed.contains(#"] {"i":1}"#), "\(printed)")
        RedisServerProcess.signalAndReap(tail, SIGTERM)
        await harness.stop()
    }

    /// `--final` ends a run, through a node and straight through Redis: a later publish on
    /// the channel fails (409 through a node) and the run's history says it is final.
    @Test(.enabled(if: RedisServerProcess.enabled))
    func publishFinalEndsARunThroughANodeAndThroughRedis() async throws {
        let harness = try await NodeHarness(nodes: 1)
        let redis = try #require(harness.redis)
        for (index, via) in [["--node", harness.urls[0]], ["--redis", redis.url]].enumerated() {
            let channel = "cli-run-\(index)"
            let ended = try await self.fanfare(
                ["publish"] + via + ["--channel", channel, "--event", "done", "--final"]
            )
            #expect(ended.code == 0, "\(ended.output)")
            let late = try await self.fanfare(["publish"] + via + ["--channel", channel, "--event", "late"])
            #expect(late.code != 0, "\(late.output)")
            #expect(late.output.contains("final event"), "\(late.output)")
            let history = try await TestHTTPClient.request("GET", harness.urls[0] + "/api/sse/history/\(channel)")
            #expect(history.body.contains(#""final":true"#), "\(history.body)")
        }
        await harness.stop()
    }

    @Test func aSettingThatCannotWorkIsRefusedWithASentence() async throws {
        let short = try await self.fanfare(["serve", "--host", "127.0.0.1", "--port", "0", "--jwt-secret", "too-short"])
        #expect(short.code != 0)
        #expect(short.output.contains("the JWT secret must be at least 32 bytes"), "\(short.output)")
        #expect(!short.output.contains("FanfareError"), "\(short.output)")

        // Credentials for any origin: any website could read a signed-in user's streams.
        let anyOrigin = try await self.fanfare(["serve", "--host", "127.0.0.1", "--port", "0", "--cors-credentials"])
        #expect(anyOrigin.code != 0)
        #expect(
            anyOrigin.output.contains(
                "--cors-credentials with the allowed origin * would let any website read a signed-in user's streams"
            ),
            "\(anyOrigin.output)"
        )
        let named = try await self.fanfare(
            ["serve", "--host", "127.0.0.1", "--port", "0", "--cors-credentials", "--cors-origin", "*"]
        )
        #expect(named.code != 0 && named.output.contains("name the allowed origins with --cors-origin"))

        let number = try await self.fanfare(["serve", "--port", "0"], environment: ["FANFARE_MAX_BODY_BYTES=lots"])
        #expect(number.code != 0)
        #expect(number.output.contains("FANFARE_MAX_BODY_BYTES"), "\(number.output)")
    }

    /// `--log-format json`: every line the node logs from start to a SIGTERM is one JSON
    /// object with the time, level, logger and message, and the metadata as fields.
    @Test func jsonLogsAreOneObjectPerLine() async throws {
        guard let executable = NodeProcess.executable else { throw TestFailure("fanfare is not built") }
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("fanfare-json-\(UUID()).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let port = try RedisServerProcess.freePort()
        let pid = try RedisServerProcess.spawn(
            [
                executable, "serve", "--host", "127.0.0.1", "--port", "\(port)", "--log-format", "json", "--node-id",
                "json-1",
            ],
            output: log
        )
        try await withDeadline("the node to listen") {
            while (try? await TestHTTPClient.request("GET", "http://127.0.0.1:\(port)/healthz"))?.status != 200 {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        RedisServerProcess.signalAndReap(pid, SIGTERM)
        let lines = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n")
        var messages: [String] = []
        for line in lines {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            guard let object else {
                Issue.record("not a JSON object: \(line)")
                continue
            }
            #expect((object["time"] as? String)?.hasSuffix("Z") == true, "\(line)")
            #expect(object["level"] is String && object["logger"] is String, "\(line)")
            let message = object["message"] as? String ?? ""
            if message == "fanfare.started" {
                // The node's own metadata, as fields.
                #expect(object["node.id"] as? String == "json-1", "\(line)")
                #expect((object["address"] as? String)?.contains("\(port)") == true, "\(line)")
            }
            messages.append(message)
        }
        #expect(messages.contains("fanfare.started"), "\(messages)")
        #expect(messages.contains("fanfare.stopped"), "\(messages)")
        let bad = try await self.fanfare(["serve", "--port", "0", "--log-format", "xml"])
        #expect(bad.code != 0 && bad.output.contains("unknown log format 'xml': use text or json"), "\(bad.output)")
    }
}
