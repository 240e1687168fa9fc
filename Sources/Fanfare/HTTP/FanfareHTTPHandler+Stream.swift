internal import FanfareAPI
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
        let authenticator = self.node.authenticator
        if authenticator.streamsAreOpen {
            self.admitStream(context: context, request: request, requested: requested, grant: nil)
            return
        }
        // Checking a token is async (the key collection is an actor); the connection
        // waits in `.responding` meanwhile.
        let grant = self.runTask(context: context) { try await authenticator.grant(for: request) }
        grant.assumeIsolated().whenComplete { result in
            guard case .responding = self.state else { return }
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
                grant: grant
            )
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
        self.openStream(context: context, request: request, clientID: stream.clientID, channels: stream.channels)
    }

    private func openStream(
        context: ChannelHandlerContext,
        request: HTTPRequest,
        clientID: String,
        channels: [String]
    ) {
        // From here on the connection speaks raw SSE: the HTTP codec leaves the pipeline (its
        // parser state is most of an idle connection's memory). Anything the client still
        // sends is read and dropped.
        context.pipeline.syncOperations.removeHandler(name: Self.encoderName, promise: nil)
        context.pipeline.syncOperations.removeHandler(name: Self.decoderName, promise: nil)
        try? context.pipeline.syncOperations.addHandler(DiscardInbound(), position: .first)
        var head = ByteBuffer()
        head.writeStaticString("HTTP/1.1 200 OK\r\n")
        head.writeStaticString("Content-Type: text/event-stream; charset=utf-8\r\n")
        head.writeStaticString("Cache-Control: no-cache, no-transform\r\n")
        head.writeStaticString("Connection: keep-alive\r\n")
        head.writeStaticString("X-Accel-Buffering: no\r\n")
        for (name, value) in self.node.cors.headers(origin: request.headers.first(name: "origin")) {
            head.writeString("\(name): \(value)\r\n")
        }
        head.writeStaticString("\r\n")
        var retry = ControlFrame.retry(milliseconds: self.node.configuration.retryMilliseconds)
        head.writeBuffer(&retry)
        context.writeAndFlush(NIOAny(head), promise: nil)

        let stream = SSEStream(context: context, clientID: clientID, channels: channels)
        // A resume: the header wins over the query parameter (EventSource sends the header).
        let lastEventID = request.headers.first(name: "last-event-id") ?? request.query["lastEventId"]
        let resumeFrom = lastEventID.flatMap { $0.isEmpty ? nil : $0 }
        if resumeFrom != nil { stream.replayBuffer = [] }
        self.state = .streaming(stream)
        let node = self.node
        node.hub.register(stream).assumeIsolated().whenComplete { result in
            guard case .streaming(let current) = self.state, current === stream else { return }
            switch result {
            case .success:
                let connected = ConnectedEvent(
                    clientId: clientID,
                    nodeId: node.identity.id,
                    channels: channels,
                    time: WallClock.milliseconds()
                )
                context.writeAndFlush(NIOAny(ControlFrame.connected(connected)), promise: nil)
                if let resumeFrom {
                    self.resume(context: context, stream: stream, from: resumeFrom)
                }
            case .failure(let error):
                // Without a confirmed subscription this stream could miss events silently:
                // close it and let the client come back after the retry delay.
                node.logger.warning(
                    "sse.subscribe.failed",
                    metadata: ["client.id": "\(clientID)", "error": "\(error)"]
                )
                self.closeForRetry(context: context)
            }
        }
    }

    /// Replays what `stream` missed after `lastEventID`, then releases its buffered live
    /// frames. The node is already subscribed, so nothing falls between the two.
    func resume(context: ChannelHandlerContext, stream: SSEStream, from lastEventID: String) {
        let node = self.node
        let channels = Set(stream.channels)
        let after = EventID(lastEventID)
        let replay: EventLoopFuture<Replay>
        if let after {
            replay = self.runTask(context: context) { try await node.bus.replay(after: after, channels: channels) }
        } else {
            replay = context.eventLoop.makeSucceededFuture(.gap(oldest: nil))  // not an id this cluster issues
        }
        replay.assumeIsolated().whenComplete { result in
            guard case .streaming(let current) = self.state, current === stream else { return }
            switch result {
            case .success(.events(let entries)):
                node.metrics.eventsReplayed.increment(by: entries.count)
                stream.finishReplay(replayed: entries.map(\.frame), replayedUpTo: entries.last?.id ?? after)
            case .success(.gap(let oldest)):
                node.metrics.resetsSent.increment()
                let trimmed = after.flatMap { after in oldest.map { after < $0 } } ?? false
                let reset = ResetEvent(
                    lastEventId: lastEventID,
                    oldestEventId: oldest?.description,
                    reason: trimmed ? .trimmed : .unknown
                )
                stream.finishReplay(replayed: [ControlFrame.reset(reset)], replayedUpTo: nil)
            case .failure(let error):
                node.logger.warning("sse.replay.failed", metadata: ["error": "\(error)"])
                self.closeForRetry(context: context)
            }
        }
    }

    /// Tells the client to come back after the retry delay, and closes the stream.
    private func closeForRetry(context: ChannelHandlerContext) {
        let frame = ControlFrame.close(.unavailable, retryMilliseconds: self.node.configuration.retryMilliseconds)
        context.writeAndFlush(NIOAny(frame)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
