import Fanfare
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The browser pages in headless Chromium (Debian's package, driven through Selenium and
/// chromedriver by Tests/Browser/browser_test.py) against Redis, two node processes and
/// nginx. Screenshots land in test-artifacts/browser (not committed).
/// Where Chromium and chromedriver are.
enum BrowserTools {
    static func executable(_ names: [String]) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/lib/chromium"]
        for name in names {
            for directory in directories where access("\(directory)/\(name)", X_OK) == 0 {
                return "\(directory)/\(name)"
            }
        }
        return nil
    }

    static let chromium = Self.executable(["chromium", "chromium-browser"])
    static let chromedriver = Self.executable(["chromedriver"])

    /// Runs where Chromium is installed, and always under CI (failing if it is missing).
    static let enabled =
        (Self.chromium != nil && RedisServerProcess.enabled && NginxProcess.enabled) || RedisServerProcess.isRequired
}

// One at a time: each runs Chromium, and several at once starve the rest of the suite on a
// small machine.
@Suite(.enabled(if: BrowserTools.enabled), .serialized, .timeLimit(.minutes(3)))
struct BrowserTests {
    @Test func theClientAndAdminPagesWorkInABrowser() async throws {
        guard let chromium = BrowserTools.chromium, let chromedriver = BrowserTools.chromedriver else {
            throw TestFailure("chromium and chromedriver are not installed; run scripts/install-dependencies.sh")
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let redis = try await RedisServerProcess(arguments: ["--appendonly", "yes"])
        let a = try await NodeProcess(id: "browser-a", redis: redis.url)
        let b = try await NodeProcess(id: "browser-b", redis: redis.url)
        // The project's config has three upstream slots: node B takes two.
        let nginx = try await NginxProcess(nodes: [a.address, b.address, b.address])
        // A node of its own cluster (another key prefix) with every credential configured.
        let secret = "browser-secret-0123456789abcdef0123456789"
        let secure = try await NodeProcess(
            id: "browser-secure",
            redis: redis.url,
            arguments: [
                "--redis-prefix", "secure", "--jwt-secret", secret, "--admin-key", "browser-admin",
                "--publisher-key", "browser-publisher",
            ]
        )
        let token = try await TokenMinter.mint(
            secret: secret,
            subject: "carol",
            channels: ["client:carol"],
            expiresIn: 600
        )
        let screenshots = root + "/test-artifacts/browser"
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("browser-\(UUID()).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        var arguments = [
            "/usr/bin/env", "python3", root + "/Tests/Browser/browser_test.py", "--nginx", nginx.url,
            "--screenshots", screenshots, "--chromium", chromium, "--chromedriver", chromedriver,
        ]
        for node in [a, b] {
            arguments += ["--node-url", node.url, "--node-id", node.id, "--node-pid", "\(node.pid)"]
        }
        arguments += [
            "--secure-url", secure.url, "--admin-key", "browser-admin", "--publisher-key", "browser-publisher",
            "--token", token,
        ]
        let pid = try RedisServerProcess.spawn(arguments, output: log)
        let code = try await RedisServerProcess.waitForExit(pid, "the browser test", within: .seconds(150))
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(code == 0, "the browser test failed:\n\(output.suffix(6000))")
        #expect(output.contains("browser checks passed"), "\(output.suffix(2000))")
        nginx.stop()
        a.stop()
        b.stop()
        secure.stop()
        redis.stop()
    }

    /// The admin page over a three-node cluster under a light load (Tests/Browser/admin_test.py):
    /// charts per node fill as it polls, the presence view lists who is on `lobby` and logs
    /// joins and leaves as they come, and the End button ends a client's streams. Leaves
    /// `test-artifacts/browser/admin-cluster.png`.
    @Test func theAdminPageChartsAThreeNodeClusterAndShowsWhoIsOnline() async throws {
        guard let chromium = BrowserTools.chromium, let chromedriver = BrowserTools.chromedriver else {
            throw TestFailure("chromium and chromedriver are not installed; run scripts/install-dependencies.sh")
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        var nodes: [NodeProcess] = []
        defer { for node in nodes { node.stop() } }
        for index in 0..<3 {
            nodes.append(try await NodeProcess(id: "node-\(index + 1)", redis: redis.url, arguments: ["--presence"]))
        }
        // A few users on lobby, spread over the nodes, and a light load: about ten publishes a
        // second on lobby, each to a node in turn.
        let users = ["amara", "bruno", "chen", "dalia", "emeka", "farah"]
        var streams: [TestStream] = []
        for (index, user) in users.enumerated() {
            let stream = try await TestStream(
                nodes[index % 3].url + "/api/sse/subscribe/\(user)-tab?userId=\(user)&channels=lobby"
            )
            _ = try await stream.connected()
            streams.append(stream)
        }
        let urls = nodes.map(\.url)
        let load = Task {
            var count = 0
            while !Task.isCancelled, count < 3_000 {
                _ = try? await TestHTTPClient.request(
                    "POST",
                    urls[count % 3] + "/api/sse/notify",
                    body: #"{"channel":"lobby","event":"tick","payload":\#(count)}"#
                )
                count += 1
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        defer { load.cancel() }
        let screenshots = root + "/test-artifacts/browser"
        try FileManager.default.createDirectory(atPath: screenshots, withIntermediateDirectories: true)
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("admin-\(UUID()).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        var arguments = [
            "/usr/bin/env", "python3", root + "/Tests/Browser/admin_test.py", "--screenshots", screenshots,
            "--chromium", chromium, "--chromedriver", chromedriver, "--users", users.joined(separator: ","),
        ]
        for node in nodes { arguments += ["--node-url", node.url, "--node-id", node.id] }
        let pid = try RedisServerProcess.spawn(arguments, output: log)
        let code = try await RedisServerProcess.waitForExit(pid, "the admin page test", within: .seconds(120))
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(code == 0, "the admin page test failed:\n\(output.suffix(6000))")
        #expect(output.contains("admin checks passed"), "\(output.suffix(2000))")
        load.cancel()
        _ = await load.value
        for stream in streams { await stream.close() }
    }

    /// fanfare.js as a page imports it (`import("/fanfare.js")` on a node's own origin),
    /// driven by Tests/Browser/fanfare_js_test.py in two Chromiums at once: runs followed
    /// from the start over EventSource and over fetch + POST (every token in order, `done`
    /// with the final event, then no request for 30 s; a finished run ends with 204), and a
    /// stream whose getToken() mints tokens good for 2-3 s on a node without leeway (1,000
    /// events in order across at least 20 expiries, one getToken() per connection).
    @Test func fanfareJSFollowsRunsAndRefreshesTokensInABrowser() async throws {
        guard let chromium = BrowserTools.chromium, let chromedriver = BrowserTools.chromedriver else {
            throw TestFailure("chromium and chromedriver are not installed; run scripts/install-dependencies.sh")
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let redis = try await RedisServerProcess()
        let runs = try await NodeProcess(id: "fanfare-js-runs", redis: redis.url)
        // A cluster of its own (another key prefix) whose streams need tokens, with no leeway:
        // the node closes each stream the moment its token expires.
        let secret = "fanfare-js-secret-0123456789abcdef0123456789"
        let publisherKey = "fanfare-js-publisher"
        let tokens = try await NodeProcess(
            id: "fanfare-js-tokens",
            redis: redis.url,
            arguments: [
                "--redis-prefix", "tokens", "--jwt-secret", secret, "--jwt-leeway-seconds", "0",
                "--publisher-key", publisherKey,
            ]
        )
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("fanfare-js-\(UUID()).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let arguments = [
            "/usr/bin/env", "python3", root + "/Tests/Browser/fanfare_js_test.py", "--run-url", runs.url,
            "--token-url", tokens.url, "--jwt-secret", secret, "--publisher-key", publisherKey,
            "--chromium", chromium, "--chromedriver", chromedriver,
        ]
        let pid = try RedisServerProcess.spawn(arguments, output: log)
        let code = try await RedisServerProcess.waitForExit(pid, "the fanfare.js browser test", within: .seconds(170))
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(code == 0, "the fanfare.js browser test failed:\n\(output.suffix(6000))")
        #expect(output.contains("fanfare.js checks passed"), "\(output.suffix(2000))")
        // What was measured: connections, expiries, events, requests after the runs.
        let measured = output.split(separator: "\n").filter { $0.hasPrefix("[") || $0.hasPrefix("fanfare.js") }
        print(measured.joined(separator: "\n"))
        tokens.stop()
        runs.stop()
        redis.stop()
    }
}
