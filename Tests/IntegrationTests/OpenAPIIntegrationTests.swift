import Foundation
import Testing

@testable import Fanfare

#if canImport(Glibc)
import Glibc
#endif

@Suite(.timeLimit(.minutes(3)))
struct OpenAPIIntegrationTests {
    /// Every route the node serves, by method and path template: the handler's own table.
    static let routes = Set(RouteTable.entries.map(\.operation))

    static let schemathesis: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        return path.split(separator: ":").map { "\($0)/schemathesis" }.first { access($0, X_OK) == 0 }
    }()

    /// Runs where schemathesis is installed, and always under CI (failing if it is missing).
    static let fuzzEnabled = Self.schemathesis != nil || RedisServerProcess.isRequired

    private func document(_ url: String) async throws -> [String: Any] {
        let response = try await TestHTTPClient.request("GET", url + "/openapi.json")
        #expect(response.status == 200)
        #expect(response.header("content-type")?.hasPrefix("application/json") == true)
        return try #require(try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])
    }

    @Test func theDescriptionListsEveryRouteAndEveryListedRouteAnswers() async throws {
        let harness = try await NodeHarness(nodes: 1, embedded: true) { $0.presence = true }
        let url = harness.urls[0]
        let document = try await self.document(url)
        #expect(document["openapi"] as? String == "3.0.3")
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        var documented = Set<String>()
        for (path, operations) in paths {
            for method in operations.keys { documented.insert("\(method.uppercased()) \(path)") }
        }
        #expect(documented == Self.routes)

        for route in documented.sorted() {
            let parts = route.split(separator: " ")
            let method = String(parts[0])
            let path = parts[1].replacingOccurrences(of: "{clientId}", with: "openapi-probe")
                .replacingOccurrences(of: "{channel}", with: "openapi-run")
            let operation = try #require(paths[String(parts[1])]?[method.lowercased()] as? [String: Any])
            let responses = try #require(operation["responses"] as? [String: Any])
            if path.hasPrefix("/api/sse/subscribe") || path.hasPrefix("/api/sse/runs/")
                || path == "/api/notifications/stream" || path == "/api/events"
            {
                let stream = try await TestStream(url + path, method: method, body: method == "POST" ? "{}" : nil)
                #expect(stream.stream.status == 200, "\(route)")
                await stream.close()
                continue
            }
            let body =
                path == "/api/sse/disconnect"
                ? #"{"clientId":"openapi-probe"}"#
                : method == "POST" ? #"{"clientId":"openapi-probe","event":"probe"}"# : nil
            let response = try await TestHTTPClient.request(method, url + path, body: body)
            #expect(responses["\(response.status)"] != nil, "\(route) answered \(response.status), not documented")
            #expect(response.status != 405, "\(route)")
            if route == "GET /api/sse/clients/{clientId}" {
                #expect(response.status == 404)  // documented: nobody by that id is connected
            } else {
                #expect(response.status == 200, "\(route) → \(response.status)")
            }
        }
        await harness.stop()
    }

    @Test(.enabled(if: Self.fuzzEnabled)) func schemathesisFindsNoServerErrorsOrSchemaViolations() async throws {
        guard let schemathesis = Self.schemathesis else {
            throw TestFailure("schemathesis is not installed; run scripts/install-dependencies.sh")
        }
        let harness = try await NodeHarness(nodes: 1, embedded: true)
        let url = harness.urls[0]
        // It runs in a directory of its own: it leaves a cache behind.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("schemathesis-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = directory + "/run.log"
        // A body over the size limit is refused with 413 before it is read, whatever its
        // schema (a batch of over 1,000 events of 100 bytes is both): a rejection too.
        try """
        [checks.negative_data_rejection]
        expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]

        """.write(toFile: directory + "/schemathesis.toml", atomically: true, encoding: .utf8)
        // Streams stay open by design, so only their refusals could be fuzzed; the bad-input
        // tests cover those. Everything else is fuzzed with every check.
        let pid = try RedisServerProcess.spawn(
            [
                schemathesis, "run", url + "/openapi.json", "--checks", "all",
                "--exclude-path-regex", "^/api/(sse/subscribe/|sse/runs/|notifications/stream|events)",
                "--phases", "examples,coverage,fuzzing", "--max-examples", "25", "--max-time", "45",
                "--seed", "20261122", "--request-timeout", "5", "--no-color", "--workers", "1", "--generation-database",
                "none",
            ],
            output: log,
            directory: directory
        )
        let code = try await RedisServerProcess.waitForExit(pid, "schemathesis", within: .seconds(150))
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(code == 0, "schemathesis failed:\n\(output.suffix(4000))")
        #expect(output.contains("passed"), "\(output.suffix(2000))")
        // The node still answers afterwards.
        #expect(try await TestHTTPClient.request("GET", url + "/healthz").status == 200)
        #expect(try await harness.notify(0, #"{"broadcast":true,"event":"after"}"#).status == 200)
        await harness.stop()
    }
}
