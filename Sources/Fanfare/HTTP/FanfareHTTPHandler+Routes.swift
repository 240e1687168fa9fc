internal import FanfareAPI
internal import Logging
internal import NIOCore
internal import NIOHTTP1

extension FanfareHTTPHandler {
    /// Sends a complete request to its route.
    func route(context: ChannelHandlerContext, request: HTTPRequest) {
        let segments = request.segments.map(String.init)
        if request.hasMalformedTarget {
            let error = HTTPError(.badRequest, "the path or query has a bad %-escape or is not UTF-8")
            self.respond(context: context, request: request, .error(error))
            return
        }
        if request.method == .OPTIONS {
            self.preflight(context: context, request: request)
            return
        }
        let match = RouteTable.match(segments)
        switch self.role {
        case .all:
            break
        case .api where match?.entries.first?.route == .metrics:
            self.respond(context: context, request: request, .error(HTTPError(.notFound, "no such route")))
            return
        case .api:
            break
        case .operations where match?.entries.first?.operations == true:
            break
        case .operations:
            let error = HTTPError(.notFound, "this address serves only /metrics, /healthz and /readyz")
            self.respond(context: context, request: request, .error(error))
            return
        }
        guard let match else {
            self.respond(context: context, request: request, .error(HTTPError(.notFound, "no such route")))
            return
        }
        guard let entry = match.entry(for: request.method) else {
            let allowed = (match.methods.map { "\($0)" } + ["OPTIONS"]).joined(separator: ", ")
            let error = HTTPError(
                .methodNotAllowed,
                "use \(match.methods.map { "\($0)" }.joined(separator: " or ")) for this route",
                headers: ["Allow": allowed]
            )
            self.respond(context: context, request: request, .error(error))
            return
        }
        self.serve(entry.route, parameter: match.parameter, segments: segments, context: context, request: request)
    }

    /// Answers a request whose route and method matched.
    private func serve(
        _ route: Route,
        parameter: String?,
        segments: [String],
        context: ChannelHandlerContext,
        request: HTTPRequest
    ) {
        switch route {
        case .subscribe:
            self.startStream(context: context, request: request, kind: .ordinary(pathClientID: parameter))
        case .stream:
            self.startStream(context: context, request: request, kind: .ordinary(pathClientID: nil))
        case .run:
            self.startStream(context: context, request: request, kind: .run(channel: parameter ?? ""))
        case .history:
            self.history(context: context, request: request, channel: parameter ?? "")
        case .disconnect:
            self.disconnect(context: context, request: request)
        case .notify:
            self.notify(context: context, request: request)
        case .clusterMetrics:
            self.respondAsync(context: context, request: request) { [node] in
                try await node.authenticator.authorizeAdmin(request)
                return try await Self.clusterMetrics(node)
            }
        case .clients:
            self.respondAsync(context: context, request: request) { [node] in
                try await node.authenticator.authorizeAdmin(request)
                return try await Self.clients(node)
            }
        case .client:
            let id = parameter ?? ""
            self.respondAsync(context: context, request: request) { [node] in
                try await node.authenticator.authorizeAdmin(request)
                return try await Self.client(node, id: id)
            }
        case .presence:
            let channel = parameter ?? ""
            let loop = context.eventLoop
            self.respondAsync(context: context, request: request) { [node] in
                try await node.authenticator.authorizeAdmin(request)
                return try await Self.presence(node, channel: channel, on: loop)
            }
        case .openAPI:
            self.respond(context: context, request: request, OpenAPIDocument.response)
        case .metrics:
            guard case .all = self.role else {
                // The operations address is private by where it listens.
                self.respond(context: context, request: request, self.prometheus())
                return
            }
            // On the public port the metrics (client counts, refusals) need the admin
            // credential, like the cluster's counts.
            let node = self.node
            self.runTask(context: context) { try await node.authenticator.authorizeAdmin(request) }
                .assumeIsolated().whenComplete { result in
                    switch result {
                    case .success: self.respond(context: context, request: request, self.prometheus())
                    case .failure(let error): self.refuse(context: context, request: request, error)
                    }
                }
        case .healthz:
            self.respond(context: context, request: request, .answer(.ok, HealthAnswer()))
        case .readyz:
            let readiness = self.readiness()
            self.respond(
                context: context,
                request: request,
                .answer(readiness.ready ? .ok : .serviceUnavailable, readiness)
            )
        case .page:
            let page = BrowserPages.response(for: segments.joined(separator: "/"))
            self.respond(context: context, request: request, page ?? .error(HTTPError(.notFound, "no such route")))
        }
    }

    private func preflight(context: ChannelHandlerContext, request: HTTPRequest) {
        var response = HTTPResponse(status: .noContent)
        for (name, value) in self.node.cors.preflightHeaders(origin: request.headers.first(name: "origin")) {
            response.headers.add(name: name, value: value)
        }
        self.respond(context: context, request: request, response)
    }

    /// Runs `body` in a task on this connection's loop (see ``EventLoopTaskExecutor``);
    /// the future completes on that loop.
    func runTask<Value: Sendable>(
        context: ChannelHandlerContext,
        _ body: @escaping @Sendable () async throws -> Value
    ) -> EventLoopFuture<Value> {
        let promise = context.eventLoop.makePromise(of: Value.self)
        // From a synchronous channel callback into async code: the task is the bridge.
        Task(executorPreference: self.node.taskExecutors.executor(for: context.eventLoop)) {
            do {
                promise.succeed(try await body())
            } catch {
                promise.fail(error)
            }
        }
        return promise.futureResult
    }

    /// Runs `body` in a task on this connection's loop and answers with its response;
    /// an error becomes its JSON answer (credential refusals are counted), and an error
    /// that is not an ``HTTPResponseError`` a 500.
    func respondAsync(
        context: ChannelHandlerContext,
        request: HTTPRequest,
        _ body: @escaping @Sendable () async throws -> HTTPResponse
    ) {
        let logger = self.node.logger
        let metrics = self.node.metrics
        let future = self.runTask(context: context) { () async -> HTTPResponse in
            do {
                return try await body()
            } catch let error as FanfareError {
                metrics.countRefusal(error)
                return .error(error)
            } catch let error as any HTTPResponseError {
                return .error(error)
            } catch {
                logger.error("http.route.failed", metadata: ["error": "\(error)"])
                return .error(error)
            }
        }
        future.assumeIsolated().whenSuccess { response in
            self.respond(context: context, request: request, response)
        }
    }
}
