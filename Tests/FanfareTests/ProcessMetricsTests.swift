import Testing

@testable import Fanfare

/// `/proc/self/stat` read as the kernel writes it, a command name with spaces and
/// parentheses included, and the figures as Prometheus text.
@Suite struct ProcessMetricsTests {
    @Test func aStatLineIsReadAfterTheCommandsName() throws {
        // Fields 3 … 24: state, then 10 numbers, utime 250, stime 50, 6 more, start 1000 ticks,
        // 123456789 virtual bytes, 2000 resident pages.
        let stat =
            "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 1000 123456789 2000 rest"
        let metrics = try #require(
            ProcessMetrics(
                stat: stat,
                ticksPerSecond: 100,
                pageSize: 4_096,
                bootTime: 1_700_000_000,
                openFileDescriptors: 12,
                maxFileDescriptors: 20_000
            )
        )
        #expect(metrics.cpuSeconds == 3.0)
        #expect(metrics.residentBytes == 8_192_000)
        #expect(metrics.virtualBytes == 123_456_789)
        #expect(metrics.startTimeSeconds == 1_700_000_010)
        #expect(metrics.text.contains("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 3.0\n"))
        #expect(metrics.text.contains("process_max_fds 20000\n"))
        #expect(ProcessMetrics.bootTime("cpu 1 2 3\nbtime 1700000000\nprocesses 9\n") == 1_700_000_000)
        #expect(
            ProcessMetrics(
                stat: "no parenthesis",
                ticksPerSecond: 100,
                pageSize: 1,
                bootTime: 0,
                openFileDescriptors: 0,
                maxFileDescriptors: 0
            ) == nil
        )
    }

    @Test func theNodesOwnFiguresAreRead() throws {
        let metrics = try #require(ProcessMetrics.current())
        #expect(metrics.residentBytes > 0 && metrics.openFileDescriptors > 0)
        #expect(metrics.maxFileDescriptors >= metrics.openFileDescriptors)
    }
}
