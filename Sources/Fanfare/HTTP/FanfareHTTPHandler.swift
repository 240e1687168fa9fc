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

    /// Which routes a listener serves: everything, everything but `/metrics` (when a
    /// separate operations address is configured), or only the operations routes.
    enum Role {
        case all
        case api
        case operations
    }

    let node: NodeContext
    let role: Role
    /// The connection's requests and answers (``HTTPConnectionStateMachine``).
    var machine: HTTPConnectionStateMachine
    /// A stream's place under the connection limits (and its user's, cluster-wide), taken
    /// before its handler exists; given back here if the connection closes before that
    /// handler takes it over.
    var heldPlace: (clientID: String, address: String, leases: StreamLeases?)?
    /// Closes a connection that is slow to send its request headers, or idle too long
    /// between requests.
    private var headerTimer: Scheduled<Void>?
    /// Between a socket read's first request part and its end: answers given meanwhile
    /// (pipelined requests answered at once) go out in one flush when the read ends.
    private var inRead = false
    private var flushPending = false

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
        self.machine = HTTPConnectionStateMachine(
            maxBodyBytes: node.configuration.maxBodyBytes,
            maxURIBytes: node.configuration.limits.maxURIBytes
        )
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
        self.flushIfPending(context: context)
    }

    /// Starts (or restarts) the wait for the next request's headers or, once they are in,
    /// for its body: each must arrive within the header timeout.
    func armHeaderTimer(context: ChannelHandlerContext) {
        self.headerTimer?.cancel()
        let timeout = self.node.configuration.limits.headerTimeout
        guard timeout > .zero else { return }
        self.headerTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            self.headerTimer = nil
            self.perform(self.machine.timerFired(), context: context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.inRead = true
        self.perform(self.machine.read(Self.unwrapInboundIn(data)), context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.inRead = false
        self.flushIfPending(context: context)
        context.fireChannelReadComplete()
    }

    private func flushIfPending(context: ChannelHandlerContext) {
        guard self.flushPending else { return }
        self.flushPending = false
        context.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let place = self.heldPlace {
            self.heldPlace = nil
            self.node.connectionLimiter.release(clientID: place.clientID, address: place.address)
            if let leases = place.leases { self.node.leases.release(leases) }
        }
        self.perform(self.machine.closed(), context: context)
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
        self.perform(self.machine.parseFailed(refusal), context: context)
    }

    /// Performs the machine's actions in order. A `route` comes last: its answer, now or
    /// later, gives the machine its next step (``respond(context:request:_:)``).
    private func perform(_ actions: [HTTPConnectionStateMachine.Action], context: ChannelHandlerContext) {
        for action in actions {
            switch action {
            case .armTimer:
                self.armHeaderTimer(context: context)
            case .cancelTimer:
                self.headerTimer?.cancel()
                self.headerTimer = nil
            case .route(let request):
                self.route(context: context, request: request)
            case .refuse(let error, let reason):
                if let reason { self.node.metrics.refused(reason) }
                self.refuseAndClose(context: context, error)
            case .close:
                context.close(promise: nil)
            case .setReading(let reading):
                // Setting it back to true reads again; a closed channel has nothing to read.
                try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: reading)
            }
        }
    }

    /// The connection became a stream: its queued requests are forgotten.
    func becameStream(context: ChannelHandlerContext) {
        self.perform(self.machine.becameStream(), context: context)
    }

    // MARK: Responses

    func respond(context: ChannelHandlerContext, request: HTTPRequest, _ response: HTTPResponse) {
        guard self.machine.isResponding else { return }
        var headers = response.headers
        self.addCORS(to: &headers, request: request)
        let body = response.body
        headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
        let keepAlive = request.keepAlive
        headers.replaceOrAdd(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        let head = HTTPResponseHead(version: .http1_1, status: response.status, headers: headers)
        context.write(Self.wrapOutboundOut(.head(head)), promise: nil)
        context.write(Self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        if keepAlive {
            context.write(Self.wrapOutboundOut(.end(nil)), promise: nil)
            // Answered while a read is handled: flushed with the read's other answers at its
            // end. Answered later (after an await): flushed now.
            if self.inRead {
                self.flushPending = true
            } else {
                context.flush()
            }
        } else {
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
        self.perform(self.machine.responded(keepAlive: keepAlive), context: context)
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
