internal import Logging
internal import NIOCore
internal import NIOHTTP1
import Synchronization

/// Serves one HTTP connection: JSON routes answer and keep the connection alive; an SSE
/// route turns the connection into a stream for the rest of its life.
///
/// Loop-confined. Requests are handled one at a time; the body is capped at the
/// configured size (413 beyond it).
final class FanfareHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let encoderName = "http.encoder"
    static let decoderName = "http.decoder"

    enum State {
        case idle
        case receiving(HTTPRequest)
        case responding
        case streaming(SSEStream)
        case closed
    }

    let services: NodeServices
    var state = State.idle

    init(services: NodeServices) {
        self.services = services
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (Self.unwrapInboundIn(data), self.state) {
        case (.head(let head), .idle):
            let request = HTTPRequest(head: head)
            let declared = head.headers.first(name: "content-length").flatMap { Int($0) } ?? 0
            if declared > self.services.configuration.maxBodyBytes {
                self.refuseAndClose(context: context, FanfareError(.payloadTooLarge, "the body is larger than allowed"))
                return
            }
            self.state = .receiving(request)
        case (.body(var chunk), .receiving(var request)):
            if request.body.count + chunk.readableBytes > self.services.configuration.maxBodyBytes {
                self.refuseAndClose(context: context, FanfareError(.payloadTooLarge, "the body is larger than allowed"))
                return
            }
            if let bytes = chunk.readBytes(length: chunk.readableBytes) { request.body += bytes }
            self.state = .receiving(request)
        case (.end, .receiving(let request)):
            self.state = .responding
            self.route(context: context, request: request)
        default:
            break  // anything after a stream started, or after a refusal, is ignored
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .streaming(let stream) = self.state {
            self.services.hub.unregister(stream)
        }
        self.state = .closed
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if case .streaming(let stream) = self.state, !context.channel.isWritable {
            // More unsent bytes than the bound: a slow consumer. Closing it protects the
            // node; it resumes by Last-Event-ID.
            self.services.metrics.slowConsumerCloses.increment()
            self.services.logger.info("sse.slow_consumer.closed", metadata: ["client.id": "\(stream.clientID)"])
            context.close(promise: nil)
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.services.logger.debug("http.error", metadata: ["error": "\(error)"])
        if case .idle = self.state, error is HTTPParserError {
            self.refuseAndClose(context: context, FanfareError(.badRequest, "malformed HTTP request"))
            return
        }
        context.close(promise: nil)
    }

    // MARK: Responses

    func respond(context: ChannelHandlerContext, request: HTTPRequest, _ response: HTTPResponse) {
        guard case .responding = self.state else { return }
        var headers = response.headers
        self.addCORS(to: &headers, request: request)
        let body = ByteBuffer(string: response.body)
        headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
        let keepAlive = request.headers.first(name: "connection")?.lowercased() != "close"
        headers.replaceOrAdd(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        let head = HTTPResponseHead(version: .http1_1, status: response.status, headers: headers)
        context.write(Self.wrapOutboundOut(.head(head)), promise: nil)
        context.write(Self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        if keepAlive {
            self.state = .idle
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            self.state = .closed
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }

    /// Answers with an error and closes, for requests that cannot be read to the end.
    private func refuseAndClose(context: ChannelHandlerContext, _ error: FanfareError) {
        self.state = .responding
        var request = HTTPRequest(head: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/"))
        request.headers.add(name: "connection", value: "close")
        self.respond(context: context, request: request, .error(error))
    }

    func addCORS(to headers: inout HTTPHeaders, request: HTTPRequest) {
        guard let origin = self.services.allowedOrigin(request.headers.first(name: "origin")) else { return }
        headers.add(name: "Access-Control-Allow-Origin", value: origin)
        headers.add(name: "Vary", value: "Origin")
    }
}

@available(*, unavailable)
extension FanfareHTTPHandler: Sendable {}
