import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `Clients/js/fanfare.js` in node (its fetch transport) against real nodes: what the
/// browser tests check in Chromium, here without a browser, for the cases that need a
/// service's own process.
@Suite(.enabled(if: RedisServerProcess.enabled), .timeLimit(.minutes(1)))
struct JavaScriptClientTests {
    private static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// A stream on node B is ended by a disconnect sent to node A; fanfare.js reports the
    /// `__disconnect` and, told not to come back, makes no request after it.
    @Test func fanfareJSHonoursADisconnectAndDoesNotComeBack() async throws {
        let harness = try await NodeHarness(nodes: 2)
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("fanfare-js-\(UUID()).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let script = try RedisServerProcess.spawn(
            ["/usr/bin/env", "node", Self.root + "/Tests/JavaScript/disconnect.mjs", harness.urls[1], "js-client"],
            output: log
        )
        defer { RedisServerProcess.signalAndReap(script, SIGKILL) }
        @Sendable func output() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        try await withDeadline("fanfare.js to open its stream") {
            while !output().contains("open") { try await Task.sleep(for: .milliseconds(20)) }
        }
        let answer = try await TestHTTPClient.request(
            "POST",
            harness.urls[0] + "/api/sse/disconnect",
            body: #"{"clientId":"js-client","reason":"moved","reconnect":false}"#
        )
        #expect(answer.body.contains(#""closed":1"#), "\(answer.body)")
        let code = try await RedisServerProcess.waitForExit(script, "the node script", within: .seconds(15))
        #expect(code == 0, "\(output())")
        let line = output().split(separator: "\n").last.map(String.init) ?? ""
        let result = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let disconnect = result["disconnect"] as? [String: Any]
        #expect(disconnect?["reason"] as? String == "moved")
        #expect(disconnect?["reconnect"] as? Bool == false)
        #expect(result["reason"] as? String == "disconnect")
        // One request: the stream it opened; none after the disconnect.
        #expect((result["requests"] as? [String])?.count == 1, "\(line)")
        await harness.stop()
    }
}
