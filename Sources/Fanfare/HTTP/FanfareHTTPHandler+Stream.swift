internal import FanfareAPI
internal import Foundation
internal import Logging
internal import NIOCore
internal import NIOHTTP1

extension FanfareHTTPHandler {
    /// Turns this connection into an SSE stream.
    ///
    /// The response head and a `retry:` go out at once (so `onopen` fires, even through
    /// proxies); `__connected` follows once the node is subscribed to every channel of the
    /// stream. The response has no length: it ends when the connection closes, so frames
    /// are written to the socket as they are, without chunk framing.
    func startStream(context: ChannelHandlerContext, request: HTTPRequest, clientID requested: String?) {
        if self.node.isDraining {
            self.respond(context: context, request: request, .error(FanfareError(.unavailable, "the node is draining")))
            return
        }
        if self.node.health.refusesStreams {
            // Its delivery check failed and its streams went to other nodes: a proxy that
            // retries on 503 sends this one there too.
            var response = HTTPResponse.error(
                FanfareError(.unavailable, "this node cannot deliver events now; another node can")
            )
            response.headers.replaceOrAdd(name: "Retry-After", value: "1")
            self.respond(context: context, request: request, response)
            return
        }
        let authenticator = self.node.authenticator
        if authenticator.streamsAreOpen {
            self.admitStream(context: context, request: request, requested: requested, grant: nil)
            return
        }
        // Checking a token is async (the key collection is an actor); the connection
        // waits in `.responding` meanwhile.
        let grant = self.runTask(context: context) { try await authenticator.grant(for: request) }
        grant.assumeIsolated().whenComplete { result in
            guard self.machine.isResponding else { return }
            switch result {
            case .success(let grant):
                self.admitStream(context: context, request: request, requested: requested, grant: grant)
            case .failure(let error):
                self.refuse(context: context, request: request, error)
            }
        }
    }

    /// Works out the stream's channels (checked against the token's grant when there is
    /// one), takes its place under the connection limits, and opens it.
    private func admitStream(
        context: ChannelHandlerContext,
        request: HTTPRequest,
        requested: String?,
        grant: Grant?
    ) {
        let stream: StreamChannels
        do {
            stream = try StreamChannels(
                requested: requested,
                userID: request.query["userId"],
                topics: request.query["channels"],
                grant: grant,
                maximumTopics: self.node.configuration.limits.channelsPerStream
            )
        } catch let error as FanfareError where error.code == .limitExceeded {
            self.node.metrics.refused(.channelsPerStream)
            self.refuse(context: context, request: request, error)
            return
        } catch {
            self.refuse(context: context, request: request, error)
            return
        }
        let address = self.clientAddress(context: context, request: request)
        if let refusal = self.node.connectionLimiter.acquire(clientID: stream.clientID, address: address) {
            let reason: NodeMetrics.Refusal
            let message: String
            switch refusal {
            case .client: (reason, message) = (.connectionsPerClient, "too many connections for this client id")
            case .address: (reason, message) = (.connectionsPerIP, "too many connections from this address")
            case .node: (reason, message) = (.connectionsPerNode, "this node has no room for more connections")
            }
            self.node.metrics.refused(reason)
            var response = HTTPResponse.error(FanfareError(.limitExceeded, message))
            response.headers.replaceOrAdd(name: "Retry-After", value: "5")
            self.respond(context: context, request: request, response)
            return
        }
        self.heldPlace = (stream.clientID, address)
        self.openStream(
            context: context,
            request: request,
            clientID: stream.clientID,
            channels: stream.channels,
            expires: grant?.expires
        )
    }

    private func openStream(
        context: ChannelHandlerContext,
        request: HTTPRequest,
        clientID: String,
        channels: [String],
        expires: Date?
    ) {
        guard let place = self.heldPlace else { return }
        self.heldPlace = nil
        self.becameStream(context: context)
        // From here on the connection speaks raw SSE: the HTTP codec and this handler leave
        // the pipeline (their state is most of an idle connection's memory) and the stream's
        // own handler takes over, with the stream's place under the limits.
        let pipeline = context.pipeline.syncOperations
        pipeline.removeHandler(name: Self.encoderName, promise: nil)
        pipeline.removeHandler(name: Self.decoderName, promise: nil)
        let head = SSEResponseHead.bytes(
            extraHeaders: self.node.cors.headers(origin: request.headers.first(name: "origin")),
            retryMilliseconds: self.node.configuration.retryMilliseconds
        )
        context.writeAndFlush(NIOAny(head), promise: nil)

        // A resume: the header wins over the query parameter (EventSource sends the header).
        let lastEventID = request.headers.first(name: "last-event-id") ?? request.query["lastEventId"]
        let resume: StreamStateMachine.Resume
        switch lastEventID {
        case nil, "": resume = .none
        case let id?: resume = Cursor.decode(id).map { .cursor($0) } ?? .unreadable(id)
        }
        let stream = SSEStreamHandler(
            node: self.node,
            clientID: clientID,
            channels: channels,
            resume: resume,
            address: place.address,
            expires: expires.flatMap(Self.deadline(for:)),
            eventLoop: context.eventLoop
        )
        do {
            try pipeline.addHandler(stream, position: .first)
        } catch {
            self.node.connectionLimiter.release(clientID: place.clientID, address: place.address)
            context.close(promise: nil)
            return
        }
        pipeline.removeHandler(context: context, promise: nil)
    }

    /// When a token that expires at `date` stops being accepted, as a deadline; `nil` for
    /// one further away than a deadline can be (any signed `exp`, however large, is a date).
    static func deadline(for date: Date) -> NIODeadline? {
        let milliseconds = date.timeIntervalSinceNow * 1_000
        // About 100 years: past it, TimeAmount's nanoseconds would overflow.
        guard milliseconds.isFinite, milliseconds < 3.0e12 else { return nil }
        return NIODeadline.now() + .milliseconds(Int64(max(0, milliseconds)))
    }
}
