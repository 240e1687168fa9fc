import ArgumentParser
import HiredisNIO
import Logging
import NIOCore
import NIOPosix
import ServerSentEvents

/// Shows the two libraries working together: events published through Redis come back
/// through a subscriber and are printed as the SSE frames a browser would receive.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Publish a few events through Redis and print them as SSE frames."
    )

    @Option(help: "Redis URL, redis://[user:password@]host:port/db")
    var redis = "redis://127.0.0.1:6379"

    @Option(help: "How many events to publish.")
    var count = 3

    func run() async throws {
        let logger = Logger(label: "fanfare.demo")
        let configuration = try RedisConfiguration(url: self.redis)
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let channel = "fanfare:demo"
        let (subscriber, events) = RedisSubscriber.makeWithStream(
            configuration: .init(redis: configuration),
            eventLoop: eventLoop,
            logger: logger
        )
        subscriber.start()
        try await subscriber.subscribe([channel])
        let publisher = try await RedisConnection.connect(
            configuration: configuration,
            eventLoop: eventLoop,
            logger: logger
        )
        for number in 1...max(1, self.count) {
            let payload = "{\"n\":\(number),\"text\":\"hello from Redis\"}"
            _ = try await publisher.send("PUBLISH", RESPArgument(channel), RESPArgument(payload))
        }
        var received = 0
        for await event in events {
            guard case .message(_, let payload) = event else { continue }
            received += 1
            var frame = ByteBuffer()
            try frame.writeServerSentEvent(
                ServerSentEvent(id: String(received), event: "demo", data: String(buffer: payload))
            )
            print(String(buffer: frame), terminator: "")
            if received == max(1, self.count) { break }
        }
        await publisher.close()
        await subscriber.close()
    }
}
