import HiredisNIO
import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import ServerSentEvents

// Micro-benchmarks for the two libraries. Not a test: prints figures for closing notes.
//
//   swift run -c release fanfare-microbench [redis://host:port]

func measure(_ label: String, operations: Int, _ body: () throws -> Void) rethrows {
    let clock = ContinuousClock()
    let start = clock.now
    try body()
    let elapsed = clock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let rate = Double(operations) / seconds
    print("\(label): \(operations) in \(Double(Int(seconds * 1000)) / 1000) s = \(Int(rate)) /s")
}

func measureAsync(_ label: String, operations: Int, _ body: () async throws -> Void) async rethrows {
    let clock = ContinuousClock()
    let start = clock.now
    try await body()
    let elapsed = clock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let rate = Double(operations) / seconds
    print("\(label): \(operations) in \(Double(Int(seconds * 1000)) / 1000) s = \(Int(rate)) /s")
}

// 1. SSE frames encoded per second: a typical notification, encoded into a reused buffer.
let event = ServerSentEvent(
    id: "1732233600000-42",
    event: "notification",
    data: #"{"notificationType":"info","title":"Build finished","message":"main is green","duration":5000}"#
)
let frames = 2_000_000
var sseBuffer = ByteBufferAllocator().buffer(capacity: 4096)
try measure("sse.encode frames", operations: frames) {
    for _ in 0..<frames {
        sseBuffer.clear()
        try sseBuffer.writeServerSentEvent(event)
    }
}

// 2. SSE frames parsed per second.
var stream = ByteBufferAllocator().buffer(capacity: 200 * 10_000)
for _ in 0..<10_000 { try stream.writeServerSentEvent(event) }
var parsedCount = 0
measure("sse.parse frames", operations: 10_000 * 50) {
    for _ in 0..<50 {
        var parser = ServerSentEventParser()
        parser.parse(stream) { _ in parsedCount += 1 }
    }
}
precondition(parsedCount == 500_000)

// 3. RESP replies decoded per second by the hiredis reader alone (no socket).
let replyCount = 1_000_000
var replies = ByteBufferAllocator().buffer(capacity: replyCount * 12)
for index in 0..<replyCount { replies.writeString(":\(index)\r\n") }
let channel = EmbeddedChannel()
try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPReplyDecoder()))
try measure("resp.decode integer replies (embedded)", operations: replyCount) {
    var slice = replies
    while slice.readableBytes > 0 {
        let chunk = slice.readSlice(length: min(64 * 1024, slice.readableBytes))!
        try channel.writeInbound(chunk)
        while try channel.readInbound(as: RESPValue.self) != nil {}
    }
}
_ = try channel.finish()

// 4. End to end through a real redis-server with pipelining.
if CommandLine.arguments.count > 1 {
    let configuration = try RedisConfiguration(url: CommandLine.arguments[1])
    let loop = MultiThreadedEventLoopGroup.singleton.next()
    let connection = try await RedisConnection.connect(
        configuration: configuration,
        eventLoop: loop,
        logger: .init(label: "bench")
    )
    let total = 1_000_000
    let window = 10_000
    // Through the public API: a window of sends in flight, pipelined on the connection.
    try await measureAsync("redis.pipelined PING replies", operations: total) {
        for _ in 0..<(total / window) {
            try await withThrowingTaskGroup(of: RESPValue.self) { group in
                for _ in 0..<window { group.addTask { try await connection.send("PING") } }
                for try await _ in group {}
            }
        }
    }
    await connection.close()
}
