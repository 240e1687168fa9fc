import NIOCore
internal import NIOHTTP1
import NIOPosix
import ServerSentEvents
import Synchronization

/// The tests' own HTTP/1.1 client on SwiftNIO: one request and its response, or an SSE
/// stream, plain HTTP on loopback. It stays small and exact on purpose (a test controls
/// every byte and sees every close); the `fanfare` command's client is `FanfareClient`.
enum TestHTTPClient {
    /// A parsed `http://host[:port]/path?query`.
    struct Target: Sendable {
        var host: String
        var port: Int
        var pathAndQuery: String

        init(url: String) throws {
            guard url.hasPrefix("http://") else {
                throw TestFailure("only http:// URLs are supported: \(url)")
            }
            let rest = url.dropFirst("http://".count)
            let slash = rest.firstIndex(of: "/") ?? rest.endIndex
            let authority = rest[..<slash]
            self.pathAndQuery = slash == rest.endIndex ? "/" : String(rest[slash...])
            if let colon = authority.lastIndex(of: ":"), let port = Int(authority[authority.index(after: colon)...]) {
                self.host = String(authority[..<colon])
                self.port = port
            } else {
                self.host = String(authority)
                self.port = 80
            }
        }
    }

    struct Response: Sendable {
        var status: Int
        var headers: [(String, String)]
        var body: String

        func header(_ name: String) -> String? {
            self.headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    /// Sends one request and returns the whole response; fails when the whole response
    /// has not arrived within `timeout` (a stream route answered 200, a stuck server).
    static func request(
        _ method: String,
        _ url: String,
        body: String? = nil,
        headers: [(String, String)] = [],
        timeout: TimeAmount = .seconds(30),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> Response {
        let target = try Target(url: url)
        let promise = group.next().makePromise(of: Response.self)
        let channel = try await Self.connect(target, group: group, failing: promise) {
            ResponseCollector(promise: promise)
        }
        let timer = channel.eventLoop.scheduleTask(in: timeout) {
            promise.fail(TestFailure("no complete answer from \(url) within \(timeout)"))
            channel.close(promise: nil)
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: target.pathAndQuery)
        head.headers.add(name: "Host", value: "\(target.host):\(target.port)")
        head.headers.add(name: "Connection", value: "close")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        if let body {
            head.headers.add(name: "Content-Length", value: String(body.utf8.count))
            if !headers.contains(where: { $0.0.lowercased() == "content-type" }) {
                head.headers.add(name: "Content-Type", value: "application/json")
            }
        }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: body))), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        defer { channel.close(promise: nil) }
        return try await promise.futureResult.get()
    }

    /// Opens an SSE stream (a GET, or a POST with a JSON `body`, as `fetch` opens one); every
    /// parsed event goes to `onEvent` (on an event loop). Returns once the response head
    /// arrived; close the returned channel to stop.
    static func stream(
        _ url: String,
        method: String = "GET",
        body: String? = nil,
        headers: [(String, String)] = [],
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onEvent: @escaping @Sendable (ServerSentEvent) -> Void
    ) async throws -> EventStream {
        let target = try Target(url: url)
        let opened = group.next().makePromise(of: Int.self)
        let retry = RetryBox()
        let channel = try await Self.connect(target, group: group, failing: opened) {
            EventCollector(opened: opened, retry: retry, onEvent: onEvent)
        }
        // The response head must come within 30 s; the stream itself may last forever.
        let timer = channel.eventLoop.scheduleTask(in: .seconds(30)) {
            opened.fail(TestFailure("no response head from \(url) within 30 s"))
            channel.close(promise: nil)
        }
        opened.futureResult.whenComplete { _ in timer.cancel() }
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: target.pathAndQuery)
        head.headers.add(name: "Host", value: "\(target.host):\(target.port)")
        head.headers.add(name: "Accept", value: "text/event-stream")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        if let body {
            head.headers.add(name: "Content-Length", value: String(body.utf8.count))
            head.headers.add(name: "Content-Type", value: "application/json")
        }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: body))), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        let status = try await opened.futureResult.get()
        return EventStream(channel: channel, status: status, retry: retry)
    }

    /// Connects with the HTTP/1.1 client codec and `makeHandler()` after it; a failed
    /// connect also fails `promise`, which nothing else would complete.
    private static func connect<Value>(
        _ target: Target,
        group: any EventLoopGroup,
        failing promise: EventLoopPromise<Value>,
        makeHandler: @escaping @Sendable () -> some ChannelHandler
    ) async throws -> any Channel {
        do {
            return try await ClientBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(makeHandler())
                    }
                }
                .connect(host: target.host, port: target.port).get()
        } catch {
            promise.fail(error)
            throw error
        }
    }

    /// An open SSE stream.
    struct EventStream: Sendable {
        let channel: any Channel
        /// The response status; anything but 200 means no events will come.
        let status: Int
        let retry: RetryBox

        /// The last `retry:` the server sent (milliseconds), if any.
        var retryMilliseconds: Int? {
            let value = self.retry.value.load(ordering: .relaxed)
            return value < 0 ? nil : value
        }

        func close() async {
            try? await self.channel.close()
        }

        /// Completes when the server (or the network) closed the stream.
        func waitUntilClosed() async {
            try? await self.channel.closeFuture.get()
        }
    }
}

private final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<TestHTTPClient.Response>
    private var response = TestHTTPClient.Response(status: 0, headers: [], body: "")
    private var body = ByteBuffer()

    init(promise: EventLoopPromise<TestHTTPClient.Response>) {
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            self.response.status = Int(head.status.code)
            self.response.headers = head.headers.map { ($0.name, $0.value) }
        case .body(var chunk):
            self.body.writeBuffer(&chunk)
        case .end:
            self.response.body = String(buffer: self.body)
            self.promise.succeed(self.response)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.promise.fail(TestFailure("the connection closed before the response ended"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.promise.fail(error)
        context.close(promise: nil)
    }
}

/// The stream's last `retry:`, shared between its handler and its owner; -1 for none.
final class RetryBox: Sendable {
    let value = Atomic<Int>(-1)
}

private final class EventCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let opened: EventLoopPromise<Int>
    private let retry: RetryBox
    private let onEvent: @Sendable (ServerSentEvent) -> Void
    private var parser = ServerSentEventParser()

    init(opened: EventLoopPromise<Int>, retry: RetryBox, onEvent: @escaping @Sendable (ServerSentEvent) -> Void) {
        self.opened = opened
        self.retry = retry
        self.onEvent = onEvent
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            self.opened.succeed(Int(head.status.code))
        case .body(let chunk):
            self.parser.parse(chunk) { self.onEvent($0) }
            if let time = self.parser.reconnectionTime { self.retry.value.store(time, ordering: .relaxed) }
        case .end:
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.opened.fail(TestFailure("the connection closed before the response started"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.opened.fail(error)
        context.close(promise: nil)
    }
}
