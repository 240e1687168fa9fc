import Foundation
import HiredisNIO
import Logging
import NIOCore
import NIOPosix
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.enabled(if: RedisServerProcess.enabled), .timeLimit(.minutes(2)))
struct RedisSubscriberIntegrationTests {
    let logger = Logger(label: "test")
    var loop: any EventLoop { MultiThreadedEventLoopGroup.singleton.next() }

    private func publisher(_ server: RedisServerProcess) async throws -> RedisConnection {
        try await RedisConnection.connect(
            configuration: server.configuration,
            eventLoop: self.loop,
            logger: self.logger
        )
    }

    private func subscriber(
        _ server: RedisServerProcess,
        ping: TimeAmount? = .seconds(2)
    ) -> (RedisSubscriber, SubscriberEvents) {
        let (subscriber, events) = RedisSubscriber.makeWithStream(
            configuration: .init(redis: server.configuration, pingInterval: ping),
            eventLoop: self.loop,
            logger: self.logger
        )
        subscriber.start()
        return (subscriber, SubscriberEvents(events))
    }

    @Test func aPublishFromAnotherConnectionReachesTheSubscriber() async throws {
        let server = try await RedisServerProcess()
        defer { server.stop() }
        let (subscriber, events) = self.subscriber(server)
        let channel = "chan:\(UUID())"
        try await subscriber.subscribe([channel])
        #expect(try await self.nextReady(events) == false)

        let publisher = try await self.publisher(server)
        let payload: [UInt8] = [0, 1, 2, 0xFF] + Array("hello".utf8)
        #expect(try await publisher.send("PUBLISH", RESPArgument(channel), RESPArgument(bytes: payload)) == .integer(1))
        let (name, received) = try await self.nextMessage(events)
        #expect(name == channel)
        #expect(Array(received.readableBytesView) == payload)
        await publisher.close()
        await subscriber.close()
    }

    @Test func patternsAndUnsubscribesWork() async throws {
        let server = try await RedisServerProcess()
        defer { server.stop() }
        let (subscriber, events) = self.subscriber(server)
        let prefix = "orders:\(UUID())"
        try await subscriber.psubscribe(["\(prefix):*"])
        try await subscriber.subscribe(["\(prefix)-plain"])
        let publisher = try await self.publisher(server)

        #expect(try await publisher.send("PUBLISH", RESPArgument("\(prefix):eu"), "p1") == .integer(1))
        let seen = try await events.until("the pattern message") {
            if case .patternMessage = $0.last { true } else { false }
        }
        if case .patternMessage(let pattern, let channel, let payload) = seen.last {
            #expect(pattern == "\(prefix):*")
            #expect(channel == "\(prefix):eu")
            #expect(String(buffer: payload) == "p1")
        } else {
            Issue.record("no pattern message: \(seen)")
        }

        subscriber.unsubscribe(["\(prefix)-plain"])
        subscriber.punsubscribe(["\(prefix):*"])
        // Once Redis has processed the unsubscribes nobody is listening any more.
        try await withDeadline("unsubscribes to take effect") {
            while true {
                let subscribers = try await publisher.send("PUBSUB", "NUMSUB", RESPArgument("\(prefix)-plain"))
                let patterns = try await publisher.send("PUBSUB", "NUMPAT")
                if subscribers.array?.last?.int == 0 && patterns.int == 0 { break }
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        #expect(try await publisher.send("PUBLISH", RESPArgument("\(prefix):eu"), "p2") == .integer(0))
        await publisher.close()
        await subscriber.close()
    }

    @Test func clientKillMakesItReconnectResubscribeAndSignal() async throws {
        let server = try await RedisServerProcess()
        defer { server.stop() }
        let (subscriber, events) = self.subscriber(server)
        let channels = (0..<50).map { "kill:\(UUID()):\($0)" }
        try await subscriber.subscribe(channels)
        try await subscriber.psubscribe(["kill-pattern:*"])
        #expect(try await self.nextReady(events) == false)

        let admin = try await self.publisher(server)
        #expect(try await admin.send("CLIENT", "KILL", "TYPE", "pubsub").int == 1)

        let seen = try await events.until("the subscriber to reconnect") { $0.last?.readiness == true }
        for case .disconnected(let error) in seen { #expect(error.code == .connectionClosed) }
        #expect(seen.contains { $0.isDisconnect })

        for channel in [channels[0], channels[49]] {
            #expect(try await admin.send("PUBLISH", RESPArgument(channel), "after") == .integer(1))
            let (name, payload) = try await self.nextMessage(events)
            #expect(name == channel)
            #expect(String(buffer: payload) == "after")
        }
        #expect(try await admin.send("PUBLISH", "kill-pattern:x", "p") == .integer(1))
        await admin.close()
        await subscriber.close()
    }

    @Test func aSilentConnectionIsDetectedByPingAndReplaced() async throws {
        let server = try await RedisServerProcess()
        defer { server.stop() }
        let (subscriber, events) = self.subscriber(server, ping: .milliseconds(250))
        let channel = "silent:\(UUID())"
        #expect(try await self.nextReady(events) == false)
        do {
            try await subscriber.subscribe([channel])
        } catch let error as RedisClientError where error.code == .connectionClosed {
            // Under a loaded test run a 250 ms ping can already cycle the connection here.
            // The name stays wanted and is subscribed on reconnect, which the delivery
            // below proves.
        }

        // Pausing every client stalls the PING replies the way a half-open TCP path would.
        let admin = try await self.publisher(server)
        _ = try await admin.send("CLIENT", "PAUSE", "1500", "ALL")
        let seen = try await events.until("the subscriber to reconnect") { $0.last?.readiness == true }
        #expect(seen.contains { $0.isDisconnect })
        let publisher = try await self.publisher(server)
        // With a short ping the subscriber may cycle once more right after the pause;
        // what matters is that it settles and delivers again.
        try await withDeadline("the subscriber to be listening again") {
            while try await publisher.send("PUBLISH", RESPArgument(channel), "back") != .integer(1) {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        let (_, payload) = try await self.nextMessage(events)
        #expect(String(buffer: payload) == "back")
        await admin.close()
        await publisher.close()
        await subscriber.close()
    }

    @Test func itKeepsRetryingUntilTheServerComesBack() async throws {
        let server = try await RedisServerProcess()
        let (subscriber, events) = self.subscriber(server)
        let channel = "restart:\(UUID())"
        try await subscriber.subscribe([channel])
        #expect(try await self.nextReady(events) == false)
        let port = server.port
        server.kill()
        server.stop()

        // The first drop and at least two failed attempts.
        _ = try await events.until("three disconnects") { $0.filter(\.isDisconnect).count >= 3 }
        do {
            try await subscriber.subscribe(["while-down"])
            Issue.record("subscribing while down succeeded")
        } catch let error as RedisClientError {
            #expect(error.code == .connectionClosed)
        }

        let revived = try await RedisServerProcess(onPort: port)
        defer { revived.stop() }
        #expect(try await events.nextReady("the subscriber to reconnect to the revived server"))
        let publisher = try await self.publisher(revived)
        #expect(try await publisher.send("PUBLISH", RESPArgument(channel), "x") == .integer(1))
        #expect(try await publisher.send("PUBLISH", "while-down", "y") == .integer(1))
        await publisher.close()
        await subscriber.close()
    }

    @Test func closingFailsWaitersAndStopsReconnecting() async throws {
        let server = try await RedisServerProcess()
        defer { server.stop() }
        let (subscriber, _) = self.subscriber(server)
        try await subscriber.subscribe(["c:\(UUID())"])
        await subscriber.close()
        do {
            try await subscriber.subscribe(["after-close"])
            Issue.record("subscribe after close succeeded")
        } catch let error as RedisClientError {
            #expect(error.code == .clientClosed)
        }
        let admin = try await self.publisher(server)
        #expect(try await admin.send("PUBSUB", "NUMSUB", "after-close").array?.last == .integer(0))
        await admin.close()
    }

    // MARK: Helpers

    /// A name let go while the subscriber is still connecting (in a cluster: moved to
    /// another primary's subscriber) does not leave its subscribe waiting until the
    /// connection drops: it ends, with nothing left to confirm. The server is stopped
    /// (SIGSTOP) so that the connect hangs in AUTH.
    @Test func aSubscribeLetGoBeforeItWasConfirmedEndsAtOnce() async throws {
        let server = try await RedisServerProcess(arguments: ["--requirepass", "secret"])
        defer { server.stop() }
        var configuration = server.configuration
        configuration.password = "secret"
        configuration.commandTimeout = .seconds(120)
        _ = Glibc.kill(server.pid, SIGSTOP)
        defer { _ = Glibc.kill(server.pid, SIGCONT) }
        let subscriber = RedisSubscriber(
            configuration: .init(redis: configuration, pingInterval: nil),
            eventLoop: self.loop,
            logger: self.logger
        ) { _ in }
        // On the subscriber's loop in this order: the connect (it hangs in AUTH), the
        // subscribe, which waits for it, and the unsubscribe.
        subscriber.start()
        let waiting = subscriber.subscribeFuture(.channel, ["moved-away"])
        subscriber.unsubscribe(["moved-away"])
        // Nothing is left to wait for: it ends, as done, while the connect still hangs.
        try await withDeadline("the subscribe to end") { try await waiting.get() }
        _ = Glibc.kill(server.pid, SIGCONT)
        await subscriber.close()
    }

    private func nextReady(_ events: SubscriberEvents) async throws -> Bool {
        try await events.nextReady()
    }

    private func nextMessage(_ events: SubscriberEvents) async throws -> (String, ByteBuffer) {
        try await events.nextMessage()
    }
}

/// A subscriber's events, each waited for with a deadline that fails the test.
actor SubscriberEvents {
    private var iterator: AsyncStream<RedisSubscriberEvent>.AsyncIterator?

    init(_ events: AsyncStream<RedisSubscriberEvent>) {
        self.iterator = events.makeAsyncIterator()
    }

    private func take() async throws -> RedisSubscriberEvent {
        var iterator = self.iterator
        self.iterator = nil
        defer { self.iterator = iterator }
        guard let event = await iterator?.next(isolation: #isolation) else {
            throw TestFailure("the subscriber's events ended")
        }
        return event
    }

    func next() async throws -> RedisSubscriberEvent {
        try await withDeadline("the subscriber's next event") { try await self.take() }
    }

    /// Events until `done` says those seen so far are enough (the last one included), all
    /// within one deadline: a subscriber that keeps cycling would keep each event's own
    /// deadline alive for ever.
    func until(
        _ what: String,
        seconds: Int = 30,
        _ done: @escaping @Sendable ([RedisSubscriberEvent]) -> Bool
    ) async throws -> [RedisSubscriberEvent] {
        try await withDeadline(seconds: seconds, what) {
            var seen: [RedisSubscriberEvent] = []
            while true {
                seen.append(try await self.next())
                if done(seen) { return seen }
            }
        }
    }

    /// Whether the next `ready` says it is a reconnect.
    func nextReady(_ what: String = "the subscriber to be ready") async throws -> Bool {
        let seen = try await self.until(what) { $0.last?.readiness != nil }
        return seen.last?.readiness ?? false
    }

    /// The next message: its channel and payload.
    func nextMessage(_ what: String = "the next message") async throws -> (String, ByteBuffer) {
        let seen = try await self.until(what) { $0.last?.message != nil }
        guard let message = seen.last?.message else { throw TestFailure("no message") }
        return message
    }
}

extension RedisSubscriberEvent {
    /// `isReconnect` of a `ready`, else `nil`.
    var readiness: Bool? {
        if case .ready(let isReconnect) = self { return isReconnect }
        return nil
    }

    var isDisconnect: Bool {
        if case .disconnected = self { return true }
        return false
    }

    /// The channel and payload of a message.
    var message: (String, ByteBuffer)? {
        if case .message(let channel, let payload) = self { return (channel, payload) }
        return nil
    }
}
