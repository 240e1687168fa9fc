import NIOCore
import NIOEmbedded
import Testing

@testable import HiredisNIO

@Suite struct RedisCommandHandlerTests {
    private func makeChannel(timeout: TimeAmount? = nil) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPReplyDecoder()))
        try channel.pipeline.syncOperations.addHandler(RedisCommandHandler(commandTimeout: timeout))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 6379)).wait()
        #expect(channel.isActive)
        return channel
    }

    private func send(_ channel: EmbeddedChannel, _ command: String) -> EventLoopFuture<RESPValue> {
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        channel.write(
            RedisCommandHandler.Request(encoded: RESPCommandEncoder.encode(command, arguments: []), promise: promise),
            promise: nil
        )
        return promise.futureResult
    }

    @Test func matchesRepliesToCommandsInOrderAndFlushesOncePerTick() throws {
        let channel = try self.makeChannel()
        let first = self.send(channel, "ONE")
        let second = self.send(channel, "TWO")
        // Nothing is flushed until the loop runs the coalesced flush.
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        channel.embeddedEventLoop.run()
        #expect(try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) } == "*1\r\n$3\r\nONE\r\n")
        #expect(try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) } == "*1\r\n$3\r\nTWO\r\n")

        try channel.writeInbound(ByteBuffer(string: ":1\r\n-ERR no\r\n"))
        #expect(try first.wait() == .integer(1))
        #expect(try second.wait() == .error("ERR no"))
        _ = try channel.finish()
    }

    @Test func failsEveryPendingCommandWhenTheConnectionCloses() throws {
        let channel = try self.makeChannel()
        let futures = (0..<3).map { _ in self.send(channel, "PING") }
        channel.embeddedEventLoop.run()
        channel.pipeline.fireChannelInactive()
        for future in futures {
            #expect {
                try future.wait()
            } throws: { error in
                (error as? RedisClientError)?.code == .connectionClosed
            }
        }
        _ = try? channel.finish()
    }

    @Test func aReplyNobodyAskedForClosesTheConnection() throws {
        let channel = try self.makeChannel()
        try channel.writeInbound(ByteBuffer(string: "+surprise\r\n"))
        #expect(!channel.isActive)
        let late = self.send(channel, "PING")
        #expect(throws: RedisClientError.self) { try late.wait() }
        // Let the pipeline tear down (scheduled on the loop when a handler closes).
        channel.embeddedEventLoop.run()
        _ = try? channel.finish()
    }

    @Test func aLateReplyFailsEverythingWithATimeoutAndCloses() throws {
        let channel = try self.makeChannel(timeout: .milliseconds(100))
        let first = self.send(channel, "ONE")
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(60))
        let second = self.send(channel, "TWO")
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(50))
        for future in [first, second] {
            #expect {
                try future.wait()
            } throws: { error in
                (error as? RedisClientError)?.code == .commandTimeout
            }
        }
        #expect(!channel.isActive)
        _ = try? channel.finish()
    }

    @Test func timelyRepliesKeepTheConnectionOpen() throws {
        let channel = try self.makeChannel(timeout: .milliseconds(100))
        let first = self.send(channel, "ONE")
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(90))
        try channel.writeInbound(ByteBuffer(string: "+OK\r\n"))
        let second = self.send(channel, "TWO")
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(90))
        try channel.writeInbound(ByteBuffer(string: "+OK\r\n"))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(500))
        #expect(try first.wait() == .simpleString("OK"))
        #expect(try second.wait() == .simpleString("OK"))
        #expect(channel.isActive)
        _ = try channel.finish()
    }
}
