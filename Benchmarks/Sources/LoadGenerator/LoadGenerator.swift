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

    private var redisPids: [Int32] { self.redisPid.split(separator: ",").compactMap { Int32($0) } }

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

    private func publishAndMeasure(
        targets: [Target],
        group: MultiThreadedEventLoopGroup,
        stats: [LoopStats],
        loops: [any EventLoop],
        pids: [Int32]
    ) async throws {
        if self.settleSeconds > 0 { try await Task.sleep(for: .seconds(self.settleSeconds)) }
        // Publishers have a thread of their own, as a publishing service would: an answer is
        // read when it arrives, not after the deliveries the subscribers' loops are reading.
        let publishing = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { publishing.shutdownGracefully { _ in } }
        let publisher = try await Publisher.connect(targets: targets, count: self.publishers, group: publishing)
        let cpuBefore = pids.map(ProcessStats.cpuSplit)
        let redisBefore = self.redisPids.map(ProcessStats.cpuSeconds).reduce(0, +)
        let selfBefore = ProcessStats.selfCPUSeconds()
        let start = LoadClock.nanoseconds()
        let padding = String(repeating: "x", count: self.payloadBytes)
        var failures = 0
        var published = 0
        let stopAt = self.seconds > 0 ? start + Int64(self.seconds * 1e9) : Int64.max
        let batch = max(1, self.batch)
        let perEvent = self.spread ? 1 : self.connections
        let peer = self.peer
        let spread = self.spread ? max(1, self.connections) : 0
        let first = self.firstStream
        let firstStreamBase = self.firstStream
        var flatChannels: [any Channel] = []
        defer { for channel in flatChannels { channel.close(promise: nil) } }
        // How long a publish takes to be answered (the node has then handed it to Redis).
        let roundTrips = RoundTrips()
        if self.rate == 0 {
            // Flat out: closed-loop lanes on the publishing loop (see FlatPublisher.swift).
            let lanes = max(1, self.publishers)
            var outcomes: [EventLoopFuture<FlatPublisherHandler.Outcome>] = []
            let events = self.events
            let window = self.window
            for lane in 0..<lanes {
                let target = targets[lane % targets.count]
                let loop = publishing.next()
                let done = loop.makePromise(of: FlatPublisherHandler.Outcome.self)
                let host = target.host
                let channel = try await ClientBootstrap(group: loop)
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(
                                FlatPublisherHandler(
                                    lane: lane,
                                    lanes: lanes,
                                    batch: batch,
                                    events: events,
                                    stopAt: stopAt,
                                    window: window,
                                    perEvent: perEvent,
                                    stats: stats,
                                    isPublished: { peer.published($0) },
                                    make: { first, count, now, request in
                                        peer.writePublish(
                                            first: first,
                                            count: count,
                                            batchSize: batch,
                                            sentAt: now,
                                            padding: padding,
                                            spread: spread,
                                            firstStream: firstStreamBase,
                                            host: host,
                                            into: &request
                                        )
                                    },
                                    done: done
                                )
                            )
                        }
                    }
                    .connect(host: target.host, port: target.port).get()
                try await loop.submit {
                    try channel.pipeline.syncOperations.handler(type: FlatPublisherHandler.self).start()
                }.get()
                outcomes.append(done.futureResult)
                flatChannels.append(channel)
            }
            for outcome in outcomes {
                let result = try await outcome.get()
                published += result.sent
                failures += result.failed
                roundTrips.histogram.withLock { $0.add(result.roundTrips) }
            }
        } else {
            try await withThrowingTaskGroup(of: (Int, Int).self) { tasks in
                let lanes = self.rate > 0 ? 1 : self.publishers
                for lane in 0..<lanes {
                    tasks.addTask {
                        var failed = 0
                        var sent = 0
                        // Requests are numbered; request k carries events k * batch ..< (k + 1) * batch.
                        var request = lane
                        while request * batch < self.events && LoadClock.nanoseconds() < stopAt {
                            let seq = request * batch
                            if self.rate == 0 {
                                // Flow control: stay at most `window` events ahead of delivery.
                                let allowed = (seq - self.window) * perEvent
                                while stats.reduce(0, { $0 + $1.progress.load(ordering: .relaxed) }) < allowed {
                                    try await Task.sleep(for: .microseconds(200))
                                }
                            } else {
                                let due = start + Int64(Double(seq) / self.rate * 1e9)
                                let wait = due - LoadClock.nanoseconds()
                                if wait > 0 { try await Task.sleep(for: .nanoseconds(wait)) }
                            }
                            let sentAt = LoadClock.nanoseconds()
                            let count = min(batch, self.events - seq)
                            let payloads = (seq..<(seq + count)).map { seq in
                                (
                                    #"{"seq":\#(seq),"t":\#(sentAt),"pad":"\#(padding)"}"#,
                                    spread > 0 ? first + seq % spread : nil
                                )
                            }
                            let status = try await publisher.publish(lane: lane) { host in
                                if batch == 1 {
                                    return peer.publishRequest(
                                        payload: payloads[0].0,
                                        stream: payloads[0].1,
                                        host: host
                                    )
                                }
                                let items = payloads.map { payload, stream in
                                    let target = stream.map { #""clientId":"load-\#($0)""# } ?? #""broadcast":true"#
                                    return #"{\#(target),"event":"load","payload":\#(payload)}"#
                                }
                                return peer.batchRequest(batch: "[" + items.joined(separator: ",") + "]", host: host)
                            }
                            let roundTrip = UInt64(max(0, LoadClock.nanoseconds() - sentAt) / 1_000)
                            roundTrips.record(roundTrip)
                            if peer.published(status) { sent += count } else { failed += count }
                            request += lanes
                        }
                        return (sent, failed)
                    }
                }
                for try await (sent, failed) in tasks {
                    published += sent
                    failures += failed
                }
            }
        }
        let publishEnd = LoadClock.nanoseconds()
        let redisCPU = self.redisPids.map(ProcessStats.cpuSeconds).reduce(0, +) - redisBefore
        let expected = published * perEvent
        // Wait for the deliveries to drain (bounded).
        let deadline = LoadClock.nanoseconds() + 30_000_000_000
        while expected > 0, LoadClock.nanoseconds() < deadline {
            let delivered = try await Self.total(stats, loops) { $0.delivered }
            if delivered >= expected { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let merged = try await Self.merge(stats, loops)
        let end = max(merged.lastDelivery, publishEnd)
        let seconds = Double(end - start) / 1e9
        let publishSeconds = Double(publishEnd - start) / 1e9
        let selfCPU = ProcessStats.selfCPUSeconds() - selfBefore
        let shape = self.spread ? "each to one stream" : "broadcast"
        print(
            "events published: \(published) (\(failures) failed), \(shape), "
                + "\(self.rate > 0 ? "\(self.rate)/s" : "flat out"), \(batch) per request: "
                + "\(Int(Double(published) / publishSeconds)) events/s over \(String(format: "%.2f", publishSeconds)) s"
        )
        print(
            "deliveries expected: \(expected), delivered: \(merged.delivered), missing: \(expected - merged.delivered)"
        )
        if self.peer.readsIDs && !self.spread {
            print("duplicates: \(merged.duplicates), out of order: \(merged.outOfOrder)")
        } else {
            print("duplicates and order: not checked (ids without the broadcast position)")
        }
        let deliveriesPerSecond = Int(Double(merged.delivered) / seconds)
        print("deliveries/s: \(deliveriesPerSecond) over \(String(format: "%.2f", seconds)) s")
        let latency = merged.latency
        print(
            "publish→receive latency ms: p50 \(Self.ms(latency.valueAtPercentile(50))), "
                + "p99 \(Self.ms(latency.valueAtPercentile(99))), max \(Self.ms(latency.max))"
        )
        let publishes = roundTrips.histogram.withLock { $0 }
        print(
            "publish round trip ms: p50 \(Self.ms(publishes.valueAtPercentile(50))), "
                + "p99 \(Self.ms(publishes.valueAtPercentile(99))), max \(Self.ms(publishes.max))"
        )
        var result: [(String, String)] = [
            ("events_per_s", "\(Int(Double(published) / publishSeconds))"),
            ("deliveries_per_s", "\(deliveriesPerSecond)"),
            ("missing", "\(expected - merged.delivered)"),
            ("latency_p50_ms", Self.ms(latency.valueAtPercentile(50))),
            ("latency_p99_ms", Self.ms(latency.valueAtPercentile(99))),
            ("answer_p50_ms", Self.ms(publishes.valueAtPercentile(50))),
            ("loader_us_per_delivery", Self.micro(selfCPU, merged.delivered)),
        ]
        if !pids.isEmpty {
            let cpuAfter = pids.map(ProcessStats.cpuSplit)
            let nodeUser = zip(cpuAfter, cpuBefore).reduce(0.0) { $0 + ($1.0.user - $1.1.user) }
            let nodeSystem = zip(cpuAfter, cpuBefore).reduce(0.0) { $0 + ($1.0.system - $1.1.system) }
            let nodeCPU = nodeUser + nodeSystem
            print(
                "node CPU: \(String(format: "%.2f", nodeCPU)) s "
                    + "(user \(String(format: "%.2f", nodeUser)) s, system \(String(format: "%.2f", nodeSystem)) s), "
                    + "\(Self.micro(nodeCPU, merged.delivered)) µs per delivery "
                    + "(user \(Self.micro(nodeUser, merged.delivered))), \(Self.micro(nodeCPU, published)) µs per publish"
            )
            let all = nodeCPU + redisCPU + selfCPU
            print(
                "all CPU (nodes, Redis, load generator): \(String(format: "%.2f", all)) s, "
                    + "\(Self.micro(all, merged.delivered)) µs per delivery"
            )
            result += [
                ("node_us_per_delivery", Self.micro(nodeCPU, merged.delivered)),
                ("node_user_us_per_delivery", Self.micro(nodeUser, merged.delivered)),
                ("node_us_per_publish", Self.micro(nodeCPU, published)),
                ("all_us_per_delivery", Self.micro(all, merged.delivered)),
            ]
        }
        if !self.redisPids.isEmpty {
            print(
                "Redis CPU: \(String(format: "%.2f", redisCPU)) s, \(Self.micro(redisCPU, published)) µs per publish"
            )
            result.append(("redis_us_per_publish", Self.micro(redisCPU, published)))
        }
        if !pids.isEmpty {
            // What the servers cost together, user and system: the nodes (or nginx
            // workers) and Redis, per delivery and per publish.
            let cpuAfter = pids.map(ProcessStats.cpuSplit)
            let servers = zip(cpuAfter, cpuBefore).reduce(0.0) {
                $0 + ($1.0.user - $1.1.user) + ($1.0.system - $1.1.system)
            }
            result += [
                ("servers_us_per_delivery", Self.micro(servers + redisCPU, merged.delivered)),
                ("servers_us_per_publish", Self.micro(servers + redisCPU, published)),
            ]
        }
        print(
            "load generator CPU: \(String(format: "%.2f", selfCPU)) s, "
                + "\(Self.micro(selfCPU, merged.delivered)) µs per delivery"
        )
        Self.printResult(result)
        await publisher.close()
    }

    /// One line the scenarios script collects into its side-by-side table.
    static func printResult(_ figures: [(String, String)]) {
        print("result: " + figures.map { "\($0)=\($1)" }.joined(separator: " "))
        fflush(nil)
    }

    /// Publishes nothing: waits until every stream has `listenEvents` events (or the
    /// deadline passes) and reports what arrived.
    private func listen(stats: [LoopStats], loops: [any EventLoop]) async throws {
        let expected = self.listenEvents * self.connections
        let deadline = LoadClock.nanoseconds() + Int64(self.listenSeconds * 1e9)
        while LoadClock.nanoseconds() < deadline {
            if try await Self.total(stats, loops, { $0.delivered }) >= expected { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let merged = try await Self.merge(stats, loops)
        let latency = merged.latency
        print(
            "deliveries expected: \(expected), delivered: \(merged.delivered), missing: \(expected - merged.delivered)"
        )
        print("duplicates: \(merged.duplicates), out of order: \(merged.outOfOrder)")
        print(
            "publish→receive latency ms: p50 \(Self.ms(latency.valueAtPercentile(50))), "
                + "p99 \(Self.ms(latency.valueAtPercentile(99))), max \(Self.ms(latency.max))"
        )
        Self.printResult([
            ("delivered", "\(merged.delivered)"), ("missing", "\(expected - merged.delivered)"),
            ("duplicates", "\(merged.duplicates)"), ("latency_p99_ms", Self.ms(latency.valueAtPercentile(99))),
        ])
    }

    /// Opens every subscriber (optionally resuming after `lastEventID`) and waits for each
    /// one's `__connected`.
    func connectAll(
        targets: [Target],
        loops: [any EventLoop],
        stats: [LoopStats],
        lastEventID: String?
    ) async throws -> [any Channel] {
        guard self.connections > 0 else { return [] }
        let allConnected = loops[0].makePromise(of: Void.self)
        let remaining = ManagedAtomicCounter(self.connections)
        var channels: [any Channel] = []
        channels.reserveCapacity(self.connections)
        let peer = self.peer
        let readsIDs = peer.readsIDs && !self.spread
        for index in 0..<self.connections {
            let target = targets[index % targets.count]
            let loopIndex = index % loops.count
            let request = ByteBuffer(
                string: peer.subscribeRequest(
                    index: index + self.firstStream,
                    host: target.host,
                    lastEventID: lastEventID,
                    spread: self.spread
                )
            )
            let channel = try await ClientBootstrap(group: loops[loopIndex])
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            SubscriberHandler(request: request, stats: stats[loopIndex], peer: peer, readsIDs: readsIDs)
                            {
                                if remaining.decrement() == 0 { allConnected.succeed() }
                            }
                        )
                    }
                }
                .connect(host: target.host, port: target.port).get()
            channels.append(channel)
        }
        try await allConnected.futureResult.get()
        return channels
    }

    /// Everyone sees one event, disconnects, misses `resumeBehind` events, and reconnects
    /// with its last id: reports how long until every client has every missed event.
    private func measureResume(
        channels: [any Channel],
        targets: [Target],
        group: MultiThreadedEventLoopGroup,
        loops: [any EventLoop],
        stats: [LoopStats]
    ) async throws -> [any Channel] {
        let publisher = try await Publisher.connect(targets: targets, count: self.publishers, group: group)
        let padding = String(repeating: "x", count: max(0, self.payloadBytes))
        _ = try await publisher.publish(lane: 0) {
            self.peer.publishRequest(payload: Self.payload(seq: 0, padding: padding), stream: nil, host: $0)
        }
        while try await Self.total(stats, loops, { $0.delivered }) < self.connections {
            try await Task.sleep(for: .milliseconds(5))
        }
        let lastID = try await loops[0].submit { String(decoding: stats[0].lastIDText, as: UTF8.self) }.get()
        for channel in channels { try? await channel.close() }

        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for lane in 0..<self.publishers {
                tasks.addTask {
                    var seq = lane
                    while seq < self.resumeBehind {
                        _ = try await publisher.publish(lane: lane) {
                            self.peer.publishRequest(
                                payload: Self.payload(seq: seq, padding: padding),
                                stream: nil,
                                host: $0
                            )
                        }
                        seq += self.publishers
                    }
                }
            }
            if self.resumeNoise > 0 {
                let (host, port) = (
                    String(self.redis.prefix { $0 != ":" }), Int(self.redis.split(separator: ":").last ?? "") ?? 6379
                )
                tasks.addTask {
                    try await RedisNoise.publish(
                        count: self.resumeNoise,
                        host: host,
                        port: port,
                        prefix: self.prefix,
                        group: group
                    )
                }
            }
            try await tasks.waitForAll()
        }
        await publisher.close()

        let fresh = loops.map { _ in LoopStats() }
        let start = LoadClock.nanoseconds()
        let reconnected = try await self.connectAll(targets: targets, loops: loops, stats: fresh, lastEventID: lastID)
        let expected = self.connections * self.resumeBehind
        let deadline = start + 60_000_000_000
        var delivered = 0
        while LoadClock.nanoseconds() < deadline {
            delivered = try await Self.total(fresh, loops) { $0.delivered }
            if delivered >= expected { break }
            try await Task.sleep(for: .milliseconds(2))
        }
        let seconds = Double(LoadClock.nanoseconds() - start) / 1e9
        let merged = try await Self.merge(fresh, loops)
        print(
            "resume: \(self.connections) clients reconnected \(self.resumeBehind) events of \(self.payloadBytes) "
                + "padding bytes behind, among \(self.resumeNoise) events of other channels (after \(lastID))"
        )
        print(
            "replayed: \(delivered) of \(expected), duplicates \(merged.duplicates), out of order \(merged.outOfOrder)"
        )
        print(
            "time until every client had every missed event: \(String(format: "%.3f", seconds)) s, "
                + "\(Int(Double(delivered) / seconds)) replayed events/s"
        )
        return reconnected
    }

    static func payload(seq: Int, padding: String) -> String {
        #"{"seq":\#(seq),"t":\#(LoadClock.nanoseconds()),"pad":"\#(padding)"}"#
    }

    static func ms(_ micros: UInt64) -> String { String(format: "%.2f", Double(micros) / 1000) }

    /// `seconds` of CPU spread over `count` operations, in microseconds each.
    static func micro(_ seconds: Double, _ count: Int) -> String {
        String(format: "%.2f", seconds / Double(max(1, count)) * 1e6)
    }

    static func total(
        _ stats: [LoopStats],
        _ loops: [any EventLoop],
        _ read: @escaping @Sendable (LoopStats) -> Int
    )
        async throws -> Int
    {
        var sum = 0
        for (index, loop) in loops.enumerated() {
            let one = stats[index]
            sum += try await loop.submit { read(one) }.get()
        }
        return sum
    }

    static func merge(_ stats: [LoopStats], _ loops: [any EventLoop]) async throws -> LoopStats {
        let merged = LoopStats()
        for (index, loop) in loops.enumerated() {
            let one = stats[index]
            try await loop.submit {
                merged.delivered += one.delivered
                merged.duplicates += one.duplicates
                merged.outOfOrder += one.outOfOrder
                merged.lastDelivery = max(merged.lastDelivery, one.lastDelivery)
                merged.latency.add(one.latency)
            }.get()
        }
        return merged
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
