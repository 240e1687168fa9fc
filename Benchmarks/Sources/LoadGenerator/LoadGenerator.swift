import ArgumentParser
import Foundation
import Histogram
import NIOCore
import NIOPosix
import Synchronization

/// Opens many SSE connections over several nodes, publishes events, and reports what
/// arrived: a measurement tool, not a test. One event loop per core, no task per
/// connection, no parser objects on the receive path.
@main
struct LoadGenerator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fanfare-load")

    @Option(help: "Comma-separated node base URLs, e.g. http://127.0.0.1:8081,http://127.0.0.1:8082")
    var nodes = ""

    @Flag(
        help: """
            Measure the machine's floor instead of a node: raw write(2) of one frame to every loopback \
            connection per round, --rate rounds a second for --events rounds (see Floor.swift).
            """
    )
    var floor = false

    @Option(help: "With --floor: writer threads, standing for the nodes.")
    var floorWriters = 2

    @Option(help: "SSE connections, spread over the nodes.")
    var connections = 1_000

    @Option(help: "Events to publish (broadcast).")
    var events = 1_000

    @Option(help: "Events per second; 0 publishes flat out.")
    var rate = 0.0

    @Option(help: "Stop publishing after this many seconds (0: publish every event).")
    var seconds = 0.0

    @Option(help: "Flat out: publish at most this many events ahead of the slowest delivery.")
    var window = 100

    @Option(help: "Publishes in flight when flat out.")
    var publishers = 8

    @Option(
        help: """
            With --rate: publishes that may be in flight at once (1: each waits for the one before). \
            More make the rate an open loop, as independent publishing services are.
            """
    )
    var pacedPublishers = 1

    @Option(help: "Padding bytes in each payload.")
    var payloadBytes = 64

    @Option(help: "Comma-separated node process ids, for RSS and CPU figures.")
    var pids = ""

    @Option(help: "Resume test: disconnect everyone, publish this many events, reconnect with Last-Event-ID.")
    var resumeBehind = 0

    @Option(help: "Resume test: also publish this many events on other channels while the clients are away.")
    var resumeNoise = 0

    @Option(help: "With --resume-noise: the cluster's Redis, host:port, and key prefix.")
    var redis = "127.0.0.1:6379"

    @Option(help: "With --resume-noise: the cluster's key prefix.")
    var prefix = "fanfare"

    @Option(help: "Only connect, measure RSS, and hold the connections this many seconds.")
    var idleSeconds = 0

    @Option(help: "The number of the first stream (load-<n>): generators sharing a cluster take turns.")
    var firstStream = 0

    @Option(help: "The server: fanfare, or nchan (the peer; see Benchmarks/nchan-peer.sh).")
    var peer = Peer.fanfare

    @Flag(help: "Each publish reaches one stream (stream seq % connections) instead of all of them.")
    var spread = false

    @Option(
        help: """
            Events per publish request: more than 1 sends a JSON array (Fanfare's batch publish); with \
            --spread, all of a batch's events go to one stream.
            """
    )
    var batch = 1

    @Option(help: "The process ids of the cluster's Redis servers (comma-separated), for their CPU per publish.")
    var redisPid = ""

    var redisPids: [Int32] { self.redisPid.split(separator: ",").compactMap { Int32($0) } }

    @Option(help: "Seconds to wait after every stream is open before publishing.")
    var settleSeconds = 0.0

    @Option(
        help: """
            Listen only: publish nothing, wait until every stream has this many events (or \
            --listen-seconds pass) and report what arrived. Another generator publishes.
            """
    )
    var listenEvents = 0

    @Option(help: "With --listen-events: the most seconds to wait, from the moment every stream is open.")
    var listenSeconds = 120.0

    @Flag(
        help: """
            Runs mode: --run-count runs (channels) at once, each publishing --tokens token events at \
            --token-rate a second then a final `complete` event, each followed from its start by \
            --followers run streams spread over the nodes; reports deliveries, latency, CPU per token \
            and whether every follower had every run whole (see LoadGenerator+Runs.swift).
            """
    )
    var runs = false

    @Option(help: "With --runs: runs at once.")
    var runCount = 200

    @Option(help: "With --runs: token events per run (then one final event).")
    var tokens = 1_000

    @Option(help: "With --runs: tokens a second per run.")
    var tokenRate = 50.0

    @Option(help: "With --runs: tokens per publish request (more than 1: a JSON array), for high rates.")
    var tokensPerPublish = 1

    @Option(help: "With --runs: followers per run, spread over the nodes (run r's follower f on node r + f).")
    var followers = 2

    @Option(help: "With --runs: run starts spread evenly over this many seconds.")
    var staggerSeconds = 2.0

    @Option(help: "With --runs: seconds to wait for the followers after the last run should have ended.")
    var runGraceSeconds = 30.0

    @Option(help: "With --runs: channel names are <prefix>-<n> (default: run-<time>, fresh each time).")
    var runPrefix = ""

    func run() async throws {
        let urls = self.nodes.split(separator: ",").map(String.init)
        let targets = try urls.map { try Target(url: $0) }
        let pids = self.pids.split(separator: ",").compactMap { Int32($0) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let loops = Array(group.makeIterator())
        let stats = loops.map { _ in LoopStats() }
        let rssBefore = pids.map(ProcessStats.rssBytes)
        if self.floor {
            try await self.runFloor(loops: loops, stats: stats)
            try await group.shutdownGracefully()
            return
        }
        if self.runs {
            let whole = try await self.measureRuns(targets: targets, loops: loops, pids: pids)
            try await group.shutdownGracefully()
            if !whole { throw ExitCode.failure }
            return
        }

        // Connect every subscriber and wait until each has its __connected.
        let connectStart = LoadClock.nanoseconds()
        var channels = try await self.connectAll(targets: targets, loops: loops, stats: stats, lastEventID: nil)
        let connectSeconds = Double(LoadClock.nanoseconds() - connectStart) / 1e9
        print("connections established: \(self.connections) in \(String(format: "%.2f", connectSeconds)) s")
        // Out at once, also into a file: the scenarios script waits for this line.
        fflush(nil)
        if !pids.isEmpty {
            try await Task.sleep(for: .seconds(2))  // let counts and allocations settle
            let rssAfter = pids.map(ProcessStats.rssBytes)
            for (index, pid) in pids.enumerated() {
                let perNode = self.connections / max(1, pids.count)
                let delta = Double(rssAfter[index] - rssBefore[index]) / Double(max(1, perNode))
                print(
                    "node pid \(pid): RSS \(rssAfter[index] / 1024) KiB, "
                        + "\(String(format: "%.2f", delta / 1024)) KiB per connection (\(perNode) connections)"
                )
            }
            let total = zip(rssAfter, rssBefore).reduce(0) { $0 + $1.0 - $1.1 }
            Self.printResult([("rss_bytes_per_stream", "\(total / max(1, self.connections))")])
        }
        if self.idleSeconds > 0 {
            try await Task.sleep(for: .seconds(self.idleSeconds))
        }

        if self.resumeBehind > 0 {
            channels = try await self.measureResume(
                channels: channels,
                targets: targets,
                group: group,
                loops: loops,
                stats: stats
            )
        } else if self.listenEvents > 0 {
            try await self.listen(stats: stats, loops: loops)
        } else if self.events > 0 {
            try await self.publishAndMeasure(targets: targets, group: group, stats: stats, loops: loops, pids: pids)
        }
        for channel in channels { channel.close(promise: nil) }
        try await group.shutdownGracefully()
    }
}

/// Publish round trips in microseconds, from every lane.
final class RoundTrips: Sendable {
    let histogram = Mutex(Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three))

    func record(_ microseconds: UInt64) {
        self.histogram.withLock { _ = $0.record(microseconds) }
    }
}

struct Target: Sendable {
    var host: String
    var port: Int

    init(url: String) throws {
        let rest = url.replacingOccurrences(of: "http://", with: "").split(separator: "/").first ?? ""
        let parts = rest.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else { throw ValidationError("bad node URL \(url)") }
        self.host = String(parts[0])
        self.port = port
    }
}
