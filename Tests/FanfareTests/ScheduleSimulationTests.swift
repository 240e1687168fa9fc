import Foundation
import Testing

/// Thousands of random schedules of the node and its streams (see ``ScheduleSimulation``):
/// no event lost unless a `__reset` named its channel, none twice, per-channel order,
/// bounded buffers, and everything caught up once the schedule settles.
///
/// A failure names its seed; `FANFARE_SCHEDULE_SEED=<seed> swift test --filter
/// ScheduleSimulationTests` replays that one schedule. `FANFARE_SCHEDULES=<n>` runs a longer
/// sweep (`Benchmarks/scenarios.sh schedules`).
@Suite struct ScheduleSimulationTests {
    @Test func randomSchedulesLoseNothingRepeatNothingAndCatchUp() throws {
        let environment = ProcessInfo.processInfo.environment
        let seeds: [UInt64]
        if let seed = environment["FANFARE_SCHEDULE_SEED"].flatMap({ UInt64($0) }) {
            seeds = [seed]
        } else {
            let count = environment["FANFARE_SCHEDULES"].flatMap { Int($0) } ?? 3_000
            let base = environment["FANFARE_SCHEDULE_BASE"].flatMap { UInt64($0) } ?? 1
            seeds = (0..<UInt64(count)).map { base + $0 }
        }
        let started = ContinuousClock.now
        var checks = 0
        for seed in seeds {
            var simulation = ScheduleSimulation(seed: seed)
            do {
                try simulation.run(steps: 300)
            } catch {
                Issue.record(
                    "\(error) (replay: FANFARE_SCHEDULE_SEED=\(seed) swift test --filter ScheduleSimulationTests)"
                )
                return
            }
            checks += simulation.checks
        }
        print("\(seeds.count) schedules of 300 steps, \(checks) events checked, in \(ContinuousClock.now - started)")
    }
}
