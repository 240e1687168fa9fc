import ArgumentParser
import Foundation
import Histogram
import NIOCore
import NIOPosix
import Synchronization

/// Connecting the streams, listening without publishing, resuming, and the shared figures.
extension LoadGenerator {
    /// Publishes nothing: waits until every stream has `listenEvents` events (or the
    /// deadline passes) and reports what arrived.
    func listen(stats: [LoopStats], loops: [any EventLoop]) async throws {
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
    func measureResume(
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
