import Foundation
import Testing

/// The benchmarks' load generator in a short run against two nodes: everything it
/// publishes is delivered, once and in order, and it prints the line the scenarios
/// script collects. (Its figures are for benchmarks; only its counts are checked here.)
@Suite(.enabled(if: RedisServerProcess.enabled), .timeLimit(.minutes(1)))
struct LoadGeneratorTests {
    private func load(_ arguments: [String]) async throws -> (code: Int32, output: String) {
        // The benchmarks' own package builds it (the test command does, before the tests).
        let executable = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Benchmarks/.build/debug/fanfare-load").path
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw TestFailure(
                "\(executable) is not built; run `swift build --package-path Benchmarks --product fanfare-load`"
            )
        }
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("fanfare-load-\(UUID()).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let pid = try RedisServerProcess.spawn([executable] + arguments, output: log)
        let code = try await RedisServerProcess.waitForExit(pid, "fanfare-load", within: .seconds(40))
        return (code, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    @Test(arguments: [["--rate", "20"], ["--rate", "0", "--publishers", "4"]])
    func aShortRunDeliversEverythingOnceAndInOrder(pacing: [String]) async throws {
        let harness = try await NodeHarness(nodes: 2)
        let run = try await self.load(
            ["--nodes", harness.urls.joined(separator: ","), "--connections", "40", "--events", "30"] + pacing
        )
        #expect(run.code == 0, "\(run.output)")
        #expect(run.output.contains("connections established: 40"), "\(run.output)")
        #expect(run.output.contains("deliveries expected: 1200, delivered: 1200, missing: 0"), "\(run.output)")
        #expect(run.output.contains("duplicates: 0, out of order: 0"), "\(run.output)")
        let result = run.output.split(separator: "\n").first { $0.hasPrefix("result: ") } ?? ""
        #expect(result.contains(" missing=0 ") && result.contains("deliveries_per_s="), "\(run.output)")
        await harness.stop()
    }
}
