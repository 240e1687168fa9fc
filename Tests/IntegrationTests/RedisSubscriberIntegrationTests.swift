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
        var matched = false
        while true {
            let event = try await events.next()
            if case .patternMessage(let pattern, let channel, let payload) = event {
                #expect(pattern == "\(prefix):*")
                #expect(channel == "\(prefix):eu")
                #expect(String(buffer: payload) == "p1")
                matched = true
                break
            }
        }
        #expect(matched)

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

        var sawDisconnect = false
        var reconnected = false
        while true {
            let event = try await events.next()
            switch event {
            case .disconnected(let error):
                #expect(error.code == .connectionClosed)
                sawDisconnect = true
            case .ready(let isReconnect):
                reconnected = isReconnect
            default:
                break
            }
            if reconnected { break }
        }
        #expect(sawDisconnect)
        #expect(reconnected)

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
        var sawDisconnect = false
        while true {
            let event = try await events.next()
            if case .disconnected = event { sawDisconnect = true }
            if case .ready(let isReconnect) = event, isReconnect { break }
        }
        #expect(sawDisconnect)
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

        var disconnects = 0
        while true {
            let event = try await events.next()
            if case .disconnected = event { disconnects += 1 }
            if disconnects >= 3 { break }  // the first drop and at least two failed attempts
        }
        do {
            try await subscriber.subscribe(["while-down"])
            Issue.record("subscribing while down succeeded")
        } catch let error as RedisClientError {
            #expect(error.code == .connectionClosed)
        }

        let revived = try await RedisServerProcess(onPort: port)
        defer { revived.stop() }
        while true {
            let event = try await events.next()
            if case .ready(let isReconnect) = event {
                #expect(isReconnect)
                break
            }
        }
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
        subscriber.start()
        let waiting = Task { try await subscriber.subscribe(["moved-away"]) }
        try await Task.sleep(for: .milliseconds(200))
        subscriber.unsubscribe(["moved-away"])
        // Nothing is left to wait for: it ends, as done, while the connect still hangs.
        try await withDeadline("the subscribe to end") { try await waiting.value }
        _ = Glibc.kill(server.pid, SIGCONT)
        await subscriber.close()
    }

    private func nextReady(_ events: SubscriberEvents) async throws -> Bool {
        while true {
            let event = try await events.next()
            if case .ready(let isReconnect) = event { return isReconnect }
        }
    }

    private func nextMessage(
        _ events: SubscriberEvents
    ) async throws -> (String, ByteBuffer) {
        while true {
            let event = try await events.next()
            if case .message(let channel, let payload) = event { return (channel, payload) }
        }
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
}
