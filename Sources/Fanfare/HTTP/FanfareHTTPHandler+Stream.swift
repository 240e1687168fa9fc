internal import FanfareAPI
internal import Foundation
internal import Logging
internal import NIOCore
internal import NIOHTTP1

extension FanfareHTTPHandler {
    /// What a stream request opens.
    enum StreamKind {
        /// An ordinary stream: the client's own channels, its user's, topics and broadcast.
        /// The client id from the path (`/api/sse/subscribe/{clientId}`), or `nil` when it
        /// comes from the query or the body.
        case ordinary(pathClientID: String?)
        /// A run: one channel, ending after its final event (`/api/sse/runs/{channel}`).
        case run(channel: String)
    }

    /// Turns this connection into an SSE stream.
    ///
    /// A POST carries the parameters in a JSON body (``StreamRequestBody``). The response
    /// head and a `retry:` go out at once (so `onopen` fires, even through proxies);
    /// `__connected` follows once the node is subscribed to every channel of the stream.
    /// The response has no length: it ends when the connection closes, so frames are
    /// written to the socket as they are, without chunk framing.
    func startStream(context: ChannelHandlerContext, request: HTTPRequest, kind: StreamKind) {
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
        var request = request
        if request.method == .POST {
            do {
                let route: StreamRequestBody.Route
                if case .run = kind { route = .run } else { route = .stream }
                try StreamRequestBody.merge(into: &request, route: route)
            } catch {
                self.refuse(context: context, request: request, error)
                return
            }
        }
        if case .ordinary(let path?) = kind, let body = request.query["clientId"], body != path {
            let error = FanfareError(.invalidInput, "the body's clientId differs from the one in the path")
            self.refuse(context: context, request: request, error)
            return
        }
        let authenticator = self.node.authenticator
        if authenticator.streamsAreOpen {
            self.admitStream(context: context, request: request, kind: kind, grant: nil)
            return
        }
        // Checking a token is async (the key collection is an actor); the connection
        // waits in `.responding` meanwhile.
        let grant = self.runTask(context: context) { [request] in try await authenticator.grant(for: request) }
        grant.assumeIsolated().whenComplete { result in
            guard self.machine.isResponding else { return }
            switch result {
            case .success(let grant):
                self.admitStream(context: context, request: request, kind: kind, grant: grant)
            case .failure(let error):
                self.refuse(context: context, request: request, error)
            }
        }
    }

    /// Works out the stream's channels (checked against the token's grant when there is
    /// one), takes its place under the connection limits, and opens it; a run first finds
    /// where it starts (or that it is over: 204).
    private func admitStream(
        context: ChannelHandlerContext,
        request: HTTPRequest,
        kind: StreamKind,
        grant: Grant?
    ) {
        let stream: StreamChannels
        var run: RunStart?
        do {
            switch kind {
            case .ordinary(let path):
                stream = try StreamChannels(
                    requested: path ?? request.query["clientId"],
                    userID: request.query["userId"],
                    topics: request.query["channels"],
                    grant: grant,
                    maximumTopics: self.node.configuration.limits.channelsPerStream,
                    presence: self.node.configuration.presence
                )
            case .run(let channel):
                let start = try RunStart(channel: channel, request: request, grant: grant)
                stream = try StreamChannels(run: channel, requested: request.query["clientId"], grant: grant)
                run = start
            }
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
        self.heldPlace = (stream.clientID, address, nil)
        let presence = self.node.configuration.presence ? stream.presenceChannels : []
        let limit = self.node.configuration.limits.connectionsPerUser
        guard let user = stream.userID, limit > 0 || !presence.isEmpty else {
            self.open(context: context, request: request, stream: stream, run: run, grant: grant)
            return
        }
        let leases = StreamLeases(user: user, presence: presence)
        guard limit > 0 else {
            self.heldPlace?.leases = leases
            self.open(context: context, request: request, stream: stream, run: run, grant: grant)
            return
        }
        // The user's place across the cluster: one atomic step in Redis, on this loop.
        let cluster = self.node.leases
        let policy = self.node.configuration.limits.userLimitPolicy
        let loop = context.eventLoop
        let lease = leases.lease
        let answer = self.runTask(context: context) {
            try await cluster.acquire(user: user, lease: lease, limit: limit, policy: policy, on: loop)
        }
        answer.assumeIsolated().whenComplete { result in
            guard self.machine.isResponding else {
                // The connection went meanwhile: a place it got goes back.
                if case .success(.granted(let place, _)) = result { cluster.release(leases.placed(place)) }
                return
            }
            switch result {
            case .success(.granted(let place, let ended)):
                self.heldPlace?.leases = leases.placed(place)
                if !ended.isEmpty {
                    self.node.logger.info(
                        "sse.user_limit.replaced",
                        metadata: ["user.id": "\(user)", "ended": "\(ended.count)"]
                    )
                }
                self.open(context: context, request: request, stream: stream, run: run, grant: grant)
            case .success(.refused):
                self.givePlaceBack()
                self.node.metrics.refused(.connectionsPerUser)
                var response = HTTPResponse.error(
                    FanfareError(
                        .limitExceeded,
                        "user \(user) has \(limit) streams open across the cluster (--max-connections-per-user)"
                    )
                )
                response.headers.replaceOrAdd(name: "Retry-After", value: "5")
                self.respond(context: context, request: request, response)
            case .failure(let error):
                self.givePlaceBack()
                self.refuse(context: context, request: request, error)
            }
        }
    }

    /// Opens the admitted stream; a run first finds where it starts (or that it is over:
    /// 204).
    private func open(
        context: ChannelHandlerContext,
        request: HTTPRequest,
        stream: StreamChannels,
        run: RunStart?,
        grant: Grant?
    ) {
        guard let run else {
            self.openStream(
                context: context,
                request: request,
                stream: stream,
                resume: Self.resume(request),
                expires: grant?.expires
            )
            return
        }
        // Where the run starts needs its channel's head: read on this loop, then open (or 204).
        let bus = self.node.bus
        let loop = context.eventLoop
        let check = self.runTask(context: context) {
            try await bus.read(run.channel, after: run.cursor ?? .zero, limit: 1, maxBytes: 1, on: loop)
        }
        check.assumeIsolated().whenComplete { result in
            guard self.machine.isResponding else { return }
            switch result.map(run.decide) {
            case .success(.open(let position)):
                self.openStream(
                    context: context,
                    request: request,
                    stream: stream,
                    resume: .cursor([Cursor.tag(run.channel): position]),
                    expires: grant?.expires,
                    endsAtFinal: true
                )
            case .success(.over):
                self.givePlaceBack()
                var response = HTTPResponse(status: .noContent)
                response.headers.add(name: "Cache-Control", value: "no-store")
                self.respond(context: context, request: request, response)
            case .failure(let error):
                self.givePlaceBack()
                self.node.logger.warning("sse.run.head_failed", metadata: ["error": "\(error)"])
                self.refuse(
                    context: context,
                    request: request,
                    FanfareError(.unavailable, "the run's history cannot be read now; try again")
                )
            }
        }
    }

    /// The place taken under the connection limits, given back: the stream did not open.
    private func givePlaceBack() {
        guard let place = self.heldPlace else { return }
        self.heldPlace = nil
        self.node.connectionLimiter.release(clientID: place.clientID, address: place.address)
        if let leases = place.leases { self.node.leases.release(leases) }
    }

    /// Where an ordinary stream resumes: the `Last-Event-ID` header wins over the
    /// `lastEventId` parameter (EventSource sends the header).
    private static func resume(_ request: HTTPRequest) -> StreamStateMachine.Resume {
        let lastEventID = request.headers.first(name: "last-event-id") ?? request.query["lastEventId"]
        switch lastEventID {
        case nil, "": return .none
        case let id?: return Cursor.decode(id).map { .cursor($0) } ?? .unreadable(id)
        }
    }

    private func openStream(
        context: ChannelHandlerContext,
        request: HTTPRequest,
        stream channels: StreamChannels,
        resume: StreamStateMachine.Resume,
        expires: Date?,
        endsAtFinal: Bool = false
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
        let stream = SSEStreamHandler(
            node: self.node,
            clientID: channels.clientID,
            channels: channels.channels,
            resume: resume,
            address: place.address,
            leases: place.leases,
            expires: expires.flatMap(Self.deadline(for:)),
            endsAtFinal: endsAtFinal,
            eventLoop: context.eventLoop
        )
        do {
            try pipeline.addHandler(stream, position: .first)
        } catch {
            self.node.connectionLimiter.release(clientID: place.clientID, address: place.address)
            if let leases = place.leases { self.node.leases.release(leases) }
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
