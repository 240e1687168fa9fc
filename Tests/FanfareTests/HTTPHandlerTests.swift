import FanfareAPI
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOPosix
import Testing

@testable import Fanfare

/// The HTTP handler on an `EmbeddedChannel`, with the same pipeline a node's connections
/// get: routing, refusals, CORS preflight and keep-alive, without sockets.
@Suite struct HTTPHandlerTests {
    private static func context(
        _ configure: (inout FanfareConfiguration) -> Void = { _ in }
    ) async throws -> (NodeContext, MultiThreadedEventLoopGroup) {
        try await TestNode.context(configure)
    }

    private struct Answer {
        var status: Int
        var headers: [String: String]
        var body: String
    }

    /// A connection: request bytes in, answers out.
    private final class Connection {
        let channel = EmbeddedChannel()

        init(_ node: NodeContext, role: FanfareHTTPHandler.Role = .all) throws {
            try FanfareHTTPHandler.configure(self.channel.pipeline.syncOperations, node: node, role: role)
            try self.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        }

        /// Sends `request` and reads every answer written back.
        func send(_ request: String) throws -> [Answer] {
            do {
                try self.channel.writeInbound(ByteBuffer(string: request))
            } catch {
                // The decoder's refusal (headers too large) reaches the handler, which
                // answers; the error also comes back here.
            }
            var bytes = ByteBuffer()
            while let part = try self.channel.readOutbound(as: IOData.self) {
                if case .byteBuffer(var buffer) = part { bytes.writeBuffer(&buffer) }
            }
            return Self.answers(String(buffer: bytes))
        }

        private static func answers(_ text: String) -> [Answer] {
            var answers: [Answer] = []
            var rest = Substring(text)
            while let end = rest.range(of: "\r\n\r\n") {
                let lines = rest[..<end.lowerBound].components(separatedBy: "\r\n")
                let status = Int(lines[0].split(separator: " ")[1]) ?? 0
                var headers: [String: String] = [:]
                for line in lines.dropFirst() {
                    let parts = line.split(separator: ":", maxSplits: 1)
                    headers[parts[0].lowercased()] = parts[1].trimmingCharacters(in: .whitespaces)
                }
                let length = Int(headers["content-length"] ?? "0") ?? 0
                let body = rest[end.upperBound...].utf8.prefix(length)
                answers.append(Answer(status: status, headers: headers, body: String(decoding: body, as: UTF8.self)))
                rest = rest[rest.utf8.index(end.upperBound, offsetBy: length)...]
            }
            return answers
        }
    }

    private func error(_ answer: Answer) throws -> ErrorAnswer {
        try APIJSON.decode(ErrorAnswer.self, from: Array(answer.body.utf8))
    }

    @Test func routesAnswerAndTheConnectionStaysOpenBetweenRequests() async throws {
        let (node, group) = try await Self.context()
        let connection = try Connection(node)
        let answers = try connection.send(
            "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        #expect(answers.map(\.status) == [200, 200])
        #expect(answers.first?.body == #"{"ok":true}"#)
        #expect(answers.first?.headers["connection"] == "keep-alive")
        let readiness = try APIJSON.decode(ReadinessAnswer.self, from: Array((answers.last?.body ?? "").utf8))
        #expect(readiness.mode == "embedded" && readiness.ready && readiness.auth == "anonymous")
        #expect(connection.channel.isActive)

        let openapi = try #require(try connection.send("GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n").first)
        #expect(openapi.status == 200)
        #expect(openapi.headers["content-type"] == "application/json; charset=utf-8")
        #expect(openapi.body == String(decoding: PackageResources.openapi_json, as: UTF8.self))

        let page = try #require(try connection.send("GET /client HTTP/1.1\r\nHost: x\r\n\r\n").first)
        #expect(page.status == 200)
        #expect(page.headers["content-type"] == "text/html; charset=utf-8")
        #expect(page.headers["content-security-policy"]?.hasPrefix("default-src 'self'") == true)
        #expect(page.body.contains("<title>Fanfare client</title>"))
        _ = try connection.channel.finish()
        try await group.shutdownGracefully()
    }

    /// Counts the flushes that reach the socket.
    private final class FlushCounter: ChannelOutboundHandler {
        typealias OutboundIn = Any
        var flushes = 0

        func flush(context: ChannelHandlerContext) {
            self.flushes += 1
            context.flush()
        }
    }

    @Test func pipelinedAnswersOfOneReadGoOutInOneFlush() async throws {
        let (node, group) = try await Self.context()
        let connection = try Connection(node)
        let counter = FlushCounter()
        try connection.channel.pipeline.syncOperations.addHandler(counter, position: .first)
        let request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        let answers = try connection.send(String(repeating: request, count: 3))
        #expect(answers.map(\.status) == [200, 200, 200])
        #expect(counter.flushes == 1)
        // One request per read: one flush each.
        _ = try connection.send(request)
        #expect(counter.flushes == 2)
        _ = try connection.channel.finish()
        try await group.shutdownGracefully()
    }

    @Test func aStreamLeavesOnlyItsOwnHandlerInThePipeline() async throws {
        let (node, group) = try await Self.context()
        let connection = try Connection(node)
        try connection.channel.writeInbound(
            ByteBuffer(string: "GET /api/sse/subscribe/alice HTTP/1.1\r\nHost: x\r\n\r\n")
        )
        var head = ByteBuffer()
        while let part = try connection.channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(var buffer) = part { head.writeBuffer(&buffer) }
        }
        #expect(String(buffer: head).hasPrefix("HTTP/1.1 200 OK\r\n"))
        // The HTTP codec and handler are gone (their state would stay for the stream's
        // whole life); the stream's handler serves the connection alone. (The decoder
        // leaves on the loop's next turn, once it has handed over what it still held.)
        connection.channel.embeddedEventLoop.run()
        let pipeline = connection.channel.pipeline.syncOperations
        #expect(throws: ChannelPipelineError.notFound) { try pipeline.handler(type: FanfareHTTPHandler.self) }
        #expect(throws: ChannelPipelineError.notFound) { try pipeline.context(name: FanfareHTTPHandler.encoderName) }
        #expect(throws: ChannelPipelineError.notFound) { try pipeline.context(name: FanfareHTTPHandler.decoderName) }
        #expect(try pipeline.handler(type: SSEStreamHandler.self).clientID == "alice")
        _ = try? connection.channel.finish()
        try await group.shutdownGracefully()
    }

    @Test func unknownRoutesAndWrongMethodsAreRefusedWithJSON() async throws {
        let (node, group) = try await Self.context()
        let connection = try Connection(node)
        let missing = try #require(try connection.send("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").first)
        #expect(missing.status == 404)
        #expect(missing.body == #"{"code":404,"error":"no such route","ok":false}"#)
        #expect(missing.headers["content-type"] == "application/json; charset=utf-8")

        let post = try #require(
            try connection.send("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").first
        )
        #expect(post.status == 405)
        #expect(post.headers["allow"] == "GET, OPTIONS")
        #expect(try self.error(post).error == "use GET for this route")

        let get = try #require(try connection.send("GET /api/sse/notify HTTP/1.1\r\nHost: x\r\n\r\n").first)
        #expect(get.status == 405)
        #expect(get.headers["allow"] == "POST, OPTIONS")

        let escape = try #require(try connection.send("GET /api/%zz HTTP/1.1\r\nHost: x\r\n\r\n").first)
        #expect(escape.status == 400)
        #expect(connection.channel.isActive)
        _ = try connection.channel.finish()
        try await group.shutdownGracefully()
    }

    @Test func oversizedRequestsAreRefusedAndTheConnectionClosed() async throws {
        let (node, group) = try await Self.context()

        let body = try Connection(node)
        let large = try #require(
            try body.send("POST /api/sse/notify HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n").first
        )
        #expect(large.status == 413)
        #expect(try self.error(large) == ErrorAnswer(error: "the body is larger than allowed", code: 413))
        #expect(large.headers["connection"] == "close")
        #expect(!body.channel.isActive)
        #expect(node.metrics.refusalCount(.bodySize) == 1)

        let target = try Connection(node)
        let long = try #require(
            try target.send("GET /healthz?q=\(String(repeating: "q", count: 9_000)) HTTP/1.1\r\nHost: x\r\n\r\n").first
        )
        #expect(long.status == 414)
        #expect(!target.channel.isActive)
        #expect(node.metrics.refusalCount(.uriSize) == 1)

        let headers = try Connection(node)
        let big = try #require(
            try headers.send(
                "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "h", count: 20_000))\r\n\r\n"
            ).first
        )
        #expect(big.status == 431)
        #expect(try self.error(big).code == 431)
        #expect(!headers.channel.isActive)
        #expect(node.metrics.refusalCount(.headerSize) == 1)
        try await group.shutdownGracefully()
    }

    @Test func aPreflightNamesWhatAnAllowedOriginMaySend() async throws {
        let (node, group) = try await Self.context { $0.corsOrigins = ["https://app.example.org"] }
        let connection = try Connection(node)
        let allowed = try #require(
            try connection.send(
                "OPTIONS /api/sse/notify HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example.org\r\nAccess-Control-Request-Method: POST\r\n\r\n"
            ).first
        )
        #expect(allowed.status == 204)
        #expect(allowed.headers["access-control-allow-origin"] == "https://app.example.org")
        #expect(allowed.headers["access-control-allow-methods"] == "GET, POST, OPTIONS")
        #expect(allowed.headers["vary"] == "Origin")

        let other = try #require(
            try connection.send("OPTIONS /api/sse/notify HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n\r\n")
                .first
        )
        #expect(other.status == 204)
        #expect(other.headers["access-control-allow-origin"] == nil)
        #expect(other.headers["access-control-allow-methods"] == nil)
        _ = try connection.channel.finish()
        try await group.shutdownGracefully()
    }

    @Test func eachListenerServesOnlyItsRoutes() async throws {
        let (node, group) = try await Self.context()
        let api = try Connection(node, role: .api)
        #expect(try api.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").first?.status == 404)
        #expect(try api.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").first?.status == 200)
        let operations = try Connection(node, role: .operations)
        let metrics = try #require(try operations.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").first)
        #expect(metrics.status == 200)
        #expect(metrics.body.contains(#"fanfare_connections{node="node-test"}"#))
        let notify = try #require(
            try operations.send("POST /api/sse/notify HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}").first
        )
        #expect(notify.status == 404)
        #expect(try self.error(notify).error == "this address serves only /metrics, /healthz and /readyz")
        _ = try api.channel.finish()
        _ = try operations.channel.finish()
        try await group.shutdownGracefully()
    }
}
