internal import Logging
internal import NIOCore
internal import NIOHTTP1
import Synchronization

/// Serves one HTTP connection: JSON routes answer and keep the connection alive; an SSE
/// route turns the connection into a stream for the rest of its life.
///
/// Loop-confined. Requests are handled one at a time, and answered in the order they came
/// (HTTP/1.1 pipelining); the body is capped at the configured size (413 beyond it).
// Removable: a connection that becomes a stream drops this handler and the HTTP codec
// (a handler that is not refuses to leave, silently, and stays for the stream's life).
final class FanfareHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let encoderName = "http.encoder"
    static let decoderName = "http.decoder"

    enum State {
        case idle
        case receiving(HTTPRequest)
        case responding
        /// The connection became a stream; an ``SSEStreamHandler`` serves it now.
        case streaming
        case closed
    }

    /// Which routes a listener serves: everything, everything but `/metrics` (when a
    /// separate operations address is configured), or only the operations routes.
    enum Role {
        case all
        case api
        case operations
    }

    let node: NodeContext
    let role: Role
    var state = State.idle
    /// A stream's place under the connection limits, taken before its handler exists;
    /// given back here if the connection closes before that handler takes it over.
    var heldPlace: (clientID: String, address: String)?
    /// Closes a connection that is slow to send its request headers, or idle too long
    /// between requests.
    private var headerTimer: Scheduled<Void>?
    /// Responses sent on this connection so far.
    private var served = 0
    /// Parts of requests that arrived while an earlier one was being answered (pipelining),
    /// handled in order once it is. Reading stops while any wait; beyond
    /// ``maxQueuedRequests`` the rest is dropped and the connection closes after the
    /// answers (a pipelining client retries what was not answered).
    private var queued = CircularBuffer<HTTPServerRequestPart>()
    private var queuedRequests = 0
    private var queueOverflowed = false
    private var answeringQueued = false
    /// A request that could not be parsed arrived while earlier ones were being answered:
    /// it is refused (and the connection closed) once they have been.
    private var parseError: HTTPError?
    /// Reading is stopped while requests wait in the queue.
    private var readingPaused = false
    static let maxQueuedRequests = 16

    /// Sets up a new connection's pipeline: the HTTP/1.1 codec (with the node's header
    /// limits) and this handler.
    static func configure(
        _ pipeline: ChannelPipeline.SynchronousOperations,
        node: NodeContext,
        role: Role
    ) throws {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldSize = node.configuration.limits.maxHeaderBytes
        limits.maxHeaderListSize = node.configuration.limits.maxHeaderBytes
        try pipeline.addHandler(HTTPResponseEncoder(), name: Self.encoderName)
        try pipeline.addHandler(
            ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes, limitConfiguration: limits)),
            name: Self.decoderName
        )
        try pipeline.addHandler(FanfareHTTPHandler(node: node, role: role))
    }

    init(node: NodeContext, role: Role = .all) {
        self.node = node
        self.role = role
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { self.armHeaderTimer(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.armHeaderTimer(context: context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.headerTimer?.cancel()
        self.headerTimer = nil
    }

    /// Starts (or restarts) the wait for the next request's headers or, once they are in,
    /// for its body: each must arrive within the header timeout.
    func armHeaderTimer(context: ChannelHandlerContext) {
        self.headerTimer?.cancel()
        let timeout = self.node.configuration.limits.headerTimeout
        guard timeout > .zero else { return }
        self.headerTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            self.headerTimer = nil
            if case .receiving = self.state {
                // A body that does not come holds its socket and buffer: refused like slow headers.
                self.node.metrics.refused(.bodyTimeout)
                self.refuseAndClose(context: context, HTTPError(.requestTimeout, "the request body took too long"))
                return
            }
            guard case .idle = self.state else { return }
            guard self.served == 0 else {
                // An idle keep-alive connection: close quietly (an unasked-for response
                // could be read by a proxy as the answer to its next request).
                context.close(promise: nil)
                return
            }
            self.node.metrics.refused(.headerTimeout)
            self.refuseAndClose(context: context, HTTPError(.requestTimeout, "the request headers took too long"))
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = Self.unwrapInboundIn(data)
        if case .responding = self.state {
            self.enqueue(part, context: context)
        } else if !self.queued.isEmpty {
            self.enqueue(part, context: context)
        } else {
            self.handle(part, context: context)
        }
    }

    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch (part, self.state) {
        case (.head(let head), .idle):
            // The body gets a timer of its own, from the end of the headers.
            self.armHeaderTimer(context: context)
            let request = HTTPRequest(head: head)
            if head.uri.utf8.count > self.node.configuration.limits.maxURIBytes {
                self.node.metrics.refused(.uriSize)
                self.refuseAndClose(context: context, HTTPError(.uriTooLong, "the request target is too long"))
                return
            }
            let declared = head.headers.first(name: "content-length").flatMap { Int($0) } ?? 0
            if declared > self.node.configuration.maxBodyBytes {
                self.node.metrics.refused(.bodySize)
                self.refuseAndClose(context: context, HTTPError(.payloadTooLarge, "the body is larger than allowed"))
                return
            }
            self.state = .receiving(request)
        case (.body(var chunk), .receiving(var request)):
            if request.body.count + chunk.readableBytes > self.node.configuration.maxBodyBytes {
                self.node.metrics.refused(.bodySize)
                self.refuseAndClose(context: context, HTTPError(.payloadTooLarge, "the body is larger than allowed"))
                return
            }
            if let bytes = chunk.readBytes(length: chunk.readableBytes) { request.body += bytes }
            self.state = .receiving(request)
        case (.end, .receiving(let request)):
            self.headerTimer?.cancel()
            self.headerTimer = nil
            self.state = .responding
            self.route(context: context, request: request)
        default:
            break  // anything after a stream started, or after a refusal, is ignored
        }
    }

    // MARK: Pipelined requests

    private func enqueue(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        guard !self.queueOverflowed else { return }
        if case .head = part {
            guard self.queuedRequests < Self.maxQueuedRequests else {
                self.queueOverflowed = true
                return
            }
            self.queuedRequests += 1
        }
        if self.queued.isEmpty { self.setReading(false, context: context) }
        self.queued.append(part)
    }

    /// Handles queued requests until one is answered later (or none is left); called when an
    /// answer was written and the connection stays open.
    private func answerQueued(context: ChannelHandlerContext) {
        guard !self.answeringQueued else { return }
        self.answeringQueued = true
        defer { self.answeringQueued = false }
        while let part = self.queued.first {
            switch self.state {
            case .idle, .receiving: break
            case .responding, .streaming, .closed: return
            }
            self.queued.removeFirst()
            if case .head = part { self.queuedRequests -= 1 }
            self.handle(part, context: context)
        }
        if case .idle = self.state, let error = self.parseError {
            self.parseError = nil
            self.refuseAndClose(context: context, error)
        } else if case .idle = self.state, self.queueOverflowed {
            self.state = .closed
            context.close(promise: nil)
        } else if !self.queueOverflowed, self.parseError == nil {
            // The rest of a queued request (its body, its end) may still be unread.
            self.setReading(true, context: context)
        }
    }

    /// Forgets queued requests (the connection became a stream) and reads again.
    func dropQueued(context: ChannelHandlerContext) {
        self.queued.removeAll()
        self.queuedRequests = 0
        self.queueOverflowed = false
        self.setReading(true, context: context)
    }

    private func setReading(_ reading: Bool, context: ChannelHandlerContext) {
        guard self.readingPaused == reading else { return }
        self.readingPaused = !reading
        // Setting it back to true reads again; a closed channel has nothing to read.
        try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: reading)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let place = self.heldPlace {
            self.heldPlace = nil
            self.node.connectionLimiter.release(clientID: place.clientID, address: place.address)
        }
        self.headerTimer?.cancel()
        self.headerTimer = nil
        self.state = .closed
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.node.logger.debug("http.error", metadata: ["error": "\(error)"])
        guard let error = error as? HTTPParserError else {
            context.close(promise: nil)
            return
        }
        let refusal: HTTPError
        if error == .headerOverflow {
            self.node.metrics.refused(.headerSize)
            refusal = HTTPError(.requestHeaderFieldsTooLarge, "the request headers are too large")
        } else {
            refusal = HTTPError(.badRequest, "malformed HTTP request")
        }
        switch self.state {
        case .idle where self.queued.isEmpty:
            self.refuseAndClose(context: context, refusal)
        case .idle, .responding:
            // Pipelined after requests not answered yet: those are answered first (in
            // order), then this one is refused and the connection closes.
            self.parseError = refusal
            self.setReading(false, context: context)
        case .receiving, .streaming, .closed:
            context.close(promise: nil)
        }
    }

    // MARK: Responses

    func respond(context: ChannelHandlerContext, request: HTTPRequest, _ response: HTTPResponse) {
        guard case .responding = self.state else { return }
        var headers = response.headers
        self.addCORS(to: &headers, request: request)
        let body = response.body
        headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
        let keepAlive = request.keepAlive
        headers.replaceOrAdd(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        let head = HTTPResponseHead(version: .http1_1, status: response.status, headers: headers)
        self.served += 1
        context.write(Self.wrapOutboundOut(.head(head)), promise: nil)
        context.write(Self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        if keepAlive {
            self.state = .idle
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
            self.armHeaderTimer(context: context)
            self.answerQueued(context: context)
        } else {
            self.state = .closed
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }

    /// Answers with an error; counts credential refusals.
    func refuse(context: ChannelHandlerContext, request: HTTPRequest, _ error: any Error) {
        if let error = error as? FanfareError { self.node.metrics.countRefusal(error) }
        self.respond(context: context, request: request, .error(error))
    }

    /// The client's address: the connection's peer, or the last `X-Forwarded-For` entry
    /// when the node is told to trust its proxy.
    func clientAddress(context: ChannelHandlerContext, request: HTTPRequest) -> String {
        if self.node.configuration.limits.trustForwardedFor,
            let forwarded = request.headers[canonicalForm: "x-forwarded-for"].last
        {
            return forwarded.trimmingWhitespace()
        }
        return context.channel.remoteAddress?.ipAddress ?? "unknown"
    }

    /// Answers with an error and closes, for requests that cannot be read to the end.
    private func refuseAndClose(context: ChannelHandlerContext, _ error: HTTPError) {
        self.state = .responding
        var request = HTTPRequest(head: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/"))
        request.headers.add(name: "connection", value: "close")
        request.keepAlive = false
        self.respond(context: context, request: request, .error(error))
    }

    func addCORS(to headers: inout HTTPHeaders, request: HTTPRequest) {
        for (name, value) in self.node.cors.headers(origin: request.headers.first(name: "origin")) {
            headers.add(name: name, value: value)
        }
    }
}

@available(*, unavailable)
extension FanfareHTTPHandler: Sendable {}
