import ArgumentParser
import Foundation
import Histogram
import NIOCore
import NIOPosix
import Synchronization

/// Publishing while every stream listens, and the figures of the run.
extension LoadGenerator {
    func publishAndMeasure(
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
                let lanes = self.rate > 0 ? min(max(1, self.pacedPublishers), max(1, self.publishers)) : self.publishers
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
}
