import ArgumentParser
import Foundation
import Histogram
import NIOCore
import NIOPosix
import Synchronization

/// Runs mode (`--runs`): many runs at once, as a service streaming model output token by
/// token. Every run is a channel; its followers open `/api/sse/runs/{channel}?from=start`
/// before it starts (follower f of run r on node r + f), then its publisher sends its
/// tokens paced at `--token-rate` and one final `complete` event, and each follower should
/// get every event once and in order, then `__end`, then the end of the response.
extension LoadGenerator {
    /// Returns whether every run reached every follower whole.
    func measureRuns(targets: [Target], loops: [any EventLoop], pids: [Int32]) async throws -> Bool {
        let runs = self.runCount
        let tokens = self.tokens
        let perRun = self.followers
        guard runs > 0, tokens > 0, perRun > 0, self.tokenRate > 0, self.tokensPerPublish > 0, !targets.isEmpty
        else {
            throw ValidationError("--runs needs positive --run-count, --tokens, --token-rate, --followers, --nodes")
        }
        let prefix = self.runPrefix.isEmpty ? "run-\(LoadClock.nanoseconds() / 1_000_000)" : self.runPrefix
        let channelName = { (run: Int) in "\(prefix)-\(run)" }
        let stats = loops.map { _ in LoopStats() }
        let tallies = loops.map { _ in RunTally(runs: runs) }
        let progress = RunProgress()
        let total = runs * perRun

        // Every follower first, each waiting for its __connected.
        let connectStart = LoadClock.nanoseconds()
        var channels: [any Channel] = []
        channels.reserveCapacity(total)
        for run in 0..<runs {
            for follower in 0..<perRun {
                let target = targets[(run + follower) % targets.count]
                let loopIndex = (run * perRun + follower) % loops.count
                let request = RunFollowerHandler.request(channel: channelName(run), host: target.host)
                let (loopStats, tally) = (stats[loopIndex], tallies[loopIndex])
                let channel = try await ClientBootstrap(group: loops[loopIndex])
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(
                                RunFollowerHandler(
                                    request: request,
                                    run: run,
                                    tokens: tokens,
                                    stats: loopStats,
                                    tally: tally,
                                    progress: progress
                                ) { progress.connected.add(1, ordering: .relaxed) }
                            )
                        }
                    }
                    .connect(host: target.host, port: target.port).get()
                channels.append(channel)
            }
        }
        let connectDeadline = LoadClock.nanoseconds() + 30_000_000_000
        while progress.settled.load(ordering: .relaxed) < total, LoadClock.nanoseconds() < connectDeadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        let connectSeconds = Double(LoadClock.nanoseconds() - connectStart) / 1e9
        let opened = progress.connected.load(ordering: .relaxed)
        // Followers that did not connect are judged with the rest: their runs are incomplete.
        print(
            "followers connected: \(opened) of \(total) (\(perRun) per run) in \(String(format: "%.2f", connectSeconds)) s"
                + (progress.closed.load(ordering: .relaxed) > 0 ? ", some closed already" : "")
        )
        fflush(nil)

        // One publisher connection per run, on a thread of their own (see publishAndMeasure).
        let publishing = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { publishing.shutdownGracefully { _ in } }
        let publishLoop = publishing.next()
        let publishTally = RunPublishTally()
        let padding = String(repeating: "x", count: max(0, self.payloadBytes))
        var publishers: [any Channel] = []
        var finished: [EventLoopFuture<Void>] = []
        for run in 0..<runs {
            let target = targets[run % targets.count]
            let plan = RunPublisherHandler.Plan(
                channel: channelName(run),
                host: target.host,
                tokens: tokens,
                perPublish: self.tokensPerPublish,
                rate: self.tokenRate,
                padding: padding
            )
            let done = publishLoop.makePromise(of: Void.self)
            let channel = try await ClientBootstrap(group: publishLoop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            RunPublisherHandler(plan: plan, tally: publishTally, done: done)
                        )
                    }
                }
                .connect(host: target.host, port: target.port).get()
            publishers.append(channel)
            finished.append(done.futureResult)
        }
        defer { for channel in publishers { channel.close(promise: nil) } }

        // The run phase: starts spread over --stagger-seconds, from 100 ms from now.
        let cpuBefore = pids.map(ProcessStats.cpuSplit)
        let redisBefore = self.redisPids.map(ProcessStats.cpuSeconds).reduce(0, +)
        let selfBefore = ProcessStats.selfCPUSeconds()
        let start = LoadClock.nanoseconds() + 100_000_000
        let stagger = max(0, self.staggerSeconds)
        let runPublishers = publishers
        try await publishLoop.submit {
            for (run, channel) in runPublishers.enumerated() {
                let offset = Int64(Double(run) / Double(runs) * stagger * 1e9)
                try channel.pipeline.syncOperations.handler(type: RunPublisherHandler.self).start(at: start + offset)
            }
        }.get()
        for future in finished { try await future.get() }
        let publishEnd = LoadClock.nanoseconds()
        let expectedEnd = start + Int64((stagger + Double(tokens) / self.tokenRate) * 1e9)
        let deadline = max(publishEnd, expectedEnd) + Int64(self.runGraceSeconds * 1e9)
        while progress.closed.load(ordering: .relaxed) < total, LoadClock.nanoseconds() < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let cpuAfter = pids.map(ProcessStats.cpuSplit)
        let redisCPU = self.redisPids.map(ProcessStats.cpuSeconds).reduce(0, +) - redisBefore
        let selfCPU = ProcessStats.selfCPUSeconds() - selfBefore
        // Whatever is still open did not end by itself.
        progress.givenUp.store(true, ordering: .relaxed)
        for channel in channels {
            channel.close(promise: nil)
            try? await channel.closeFuture.get()
        }
        let merged = try await Self.merge(stats, loops)
        let tally = try await Self.mergeTallies(tallies, loops, runs: runs)

        let whole = tally.perfect.filter { Int($0) == perRun }.count
        let expected = total * (tokens + 1)
        // The run phase: from the first run's start to the last delivery (or publish).
        let seconds = Double(max(merged.lastDelivery, publishEnd) - start) / 1e9
        let tokensPerSecond = Int(Double(tally.tokens) / seconds)
        let latency = merged.latency
        let roundTrips = try await publishLoop.submit { publishTally.roundTrips }.get()
        let (requests, sent, failed, behind) = try await publishLoop.submit {
            (publishTally.requests, publishTally.sent, publishTally.failed, publishTally.behindMax)
        }.get()
        print(
            "runs: \(runs) of \(tokens) tokens at \(self.tokenRate)/s each (\(self.tokensPerPublish) per publish), "
                + "\(perRun) followers each over \(targets.count) nodes, starts spread over \(stagger) s"
        )
        print(
            "publishes: \(requests) requests, \(sent) events accepted, \(failed) failed; answer ms: p50 "
                + "\(Self.ms(roundTrips.valueAtPercentile(50))), p99 \(Self.ms(roundTrips.valueAtPercentile(99))); "
                + "latest publish \(Self.ms(UInt64(behind / 1_000))) ms behind schedule"
        )
        print(
            "followers: \(total), ended by __end then the end of the response: \(tally.endedAndClosed) "
                + "(__end seen: \(tally.ended)), refused: \(tally.refused)"
        )
        print("runs whole at every follower: \(whole) of \(runs), incomplete: \(runs - whole)")
        print(
            "events expected: \(expected), delivered: \(merged.delivered), lost: \(tally.lost), "
                + "duplicates: \(merged.duplicates), out of order: \(merged.outOfOrder), after __end: \(tally.afterEnd)"
        )
        print(
            "tokens delivered/s: \(tokensPerSecond) over \(String(format: "%.2f", seconds)) s "
                + "(\(tally.tokens) tokens; publishing took \(String(format: "%.2f", Double(publishEnd - start) / 1e9)) s)"
        )
        print(
            "publish→receive latency ms: p50 \(Self.ms(latency.valueAtPercentile(50))), "
                + "p99 \(Self.ms(latency.valueAtPercentile(99))), max \(Self.ms(latency.max))"
        )
        var result: [(String, String)] = [
            ("tokens_per_s", "\(tokensPerSecond)"),
            ("latency_p50_ms", Self.ms(latency.valueAtPercentile(50))),
            ("latency_p99_ms", Self.ms(latency.valueAtPercentile(99))),
            ("answer_p50_ms", Self.ms(roundTrips.valueAtPercentile(50))),
            ("runs_whole", "\(whole)"),
            ("runs_incomplete", "\(runs - whole)"),
            ("lost", "\(tally.lost)"),
            ("duplicates", "\(merged.duplicates)"),
            ("out_of_order", "\(merged.outOfOrder)"),
            ("publish_failures", "\(failed)"),
            ("loader_us_per_token", Self.micro(selfCPU, tally.tokens)),
        ]
        if !pids.isEmpty {
            let nodeUser = zip(cpuAfter, cpuBefore).reduce(0.0) { $0 + ($1.0.user - $1.1.user) }
            let nodeSystem = zip(cpuAfter, cpuBefore).reduce(0.0) { $0 + ($1.0.system - $1.1.system) }
            let nodeCPU = nodeUser + nodeSystem
            print(
                "node CPU: \(String(format: "%.2f", nodeCPU)) s (user \(String(format: "%.2f", nodeUser)) s, "
                    + "system \(String(format: "%.2f", nodeSystem)) s), \(Self.micro(nodeCPU, tally.tokens)) µs "
                    + "per delivered token (user \(Self.micro(nodeUser, tally.tokens)))"
            )
            result += [
                ("node_us_per_token", Self.micro(nodeCPU, tally.tokens)),
                ("node_user_us_per_token", Self.micro(nodeUser, tally.tokens)),
                ("servers_us_per_token", Self.micro(nodeCPU + redisCPU, tally.tokens)),
            ]
        }
        if !self.redisPids.isEmpty {
            print(
                "Redis CPU: \(String(format: "%.2f", redisCPU)) s, \(Self.micro(redisCPU, tally.tokens)) µs "
                    + "per delivered token, \(Self.micro(redisCPU, sent)) µs per published event"
            )
            result.append(("redis_us_per_token", Self.micro(redisCPU, tally.tokens)))
        }
        print(
            "load generator CPU: \(String(format: "%.2f", selfCPU)) s, "
                + "\(Self.micro(selfCPU, tally.tokens)) µs per delivered token"
        )
        Self.printResult(result)
        return whole == runs
    }

    /// The loops' run tallies summed (each read on its loop).
    static func mergeTallies(_ tallies: [RunTally], _ loops: [any EventLoop], runs: Int) async throws -> RunTally {
        let merged = RunTally(runs: runs)
        for (index, loop) in loops.enumerated() {
            let one = tallies[index]
            try await loop.submit {
                for run in 0..<runs { merged.perfect[run] += one.perfect[run] }
                merged.lost += one.lost
                merged.refused += one.refused
                merged.ended += one.ended
                merged.endedAndClosed += one.endedAndClosed
                merged.afterEnd += one.afterEnd
                merged.tokens += one.tokens
            }.get()
        }
        return merged
    }
}
