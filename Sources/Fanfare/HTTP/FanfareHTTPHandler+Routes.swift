internal import Logging
internal import NIOCore
internal import NIOHTTP1
import Synchronization

extension FanfareHTTPHandler {
    func route(context: ChannelHandlerContext, request: HTTPRequest) {
        let segments = request.segments.map(String.init)
        if request.hasMalformedTarget {
            let error = FanfareError(.badRequest, "the path or query has a bad %-escape or is not UTF-8")
            self.respond(context: context, request: request, .error(error))
            return
        }
        if request.method == .OPTIONS {
            self.preflight(context: context, request: request)
            return
        }
        switch self.role {
        case .all:
            break
        case .api where segments == ["metrics"]:
            self.respond(context: context, request: request, .error(FanfareError(.notFound, "no such route")))
            return
        case .api:
            break
        case .operations where segments == ["metrics"] || segments == ["healthz"] || segments == ["readyz"]:
            break
        case .operations:
            let error = FanfareError(.notFound, "this address serves only /metrics, /healthz and /readyz")
            self.respond(context: context, request: request, .error(error))
            return
        }
        switch segments {
        case ["api", "sse", "subscribe", segments.last ?? ""] where segments.count == 4:
            self.requireMethod(.GET, context: context, request: request) {
                self.startStream(context: context, request: request, clientID: segments[3])
            }
        case ["api", "notifications", "stream"], ["api", "events"]:
            self.requireMethod(.GET, context: context, request: request) {
                self.startStream(context: context, request: request, clientID: request.query["clientId"])
            }
        case ["api", "sse", "notify"]:
            self.requireMethod(.POST, context: context, request: request) {
                self.notify(context: context, request: request)
            }
        case ["api", "sse", "metrics"]:
            self.requireMethod(.GET, context: context, request: request) {
                self.respondAsync(context: context, request: request) { [services] in
                    try await services.authenticator.authorizeAdmin(request)
                    return try await Self.metrics(services)
                }
            }
        case ["api", "sse", "clients"]:
            self.requireMethod(.GET, context: context, request: request) {
                self.respondAsync(context: context, request: request) { [services] in
                    try await services.authenticator.authorizeAdmin(request)
                    return try await Self.clients(services)
                }
            }
        case ["api", "sse", "clients", segments.last ?? ""] where segments.count == 4:
            let id = segments[3]
            self.requireMethod(.GET, context: context, request: request) {
                self.respondAsync(context: context, request: request) { [services] in
                    try await services.authenticator.authorizeAdmin(request)
                    return try await Self.client(services, id: id)
                }
            }
        case ["client"], ["admin"], ["assets", "fanfare.css"], ["assets", "client.js"], ["assets", "admin.js"]:
            self.requireMethod(.GET, context: context, request: request) {
                self.respond(context: context, request: request, Self.page(segments.joined(separator: "/")))
            }
        case ["openapi.json"]:
            self.requireMethod(.GET, context: context, request: request) {
                self.respond(context: context, request: request, .json(.ok, OpenAPIDocument.json))
            }
        case ["metrics"]:
            self.requireMethod(.GET, context: context, request: request) {
                self.respond(context: context, request: request, self.prometheus())
            }
        case ["healthz"]:
            self.requireMethod(.GET, context: context, request: request) {
                self.respond(context: context, request: request, .json(.ok, #"{"ok":true}"#))
            }
        case ["readyz"]:
            self.requireMethod(.GET, context: context, request: request) {
                let ready = self.services.isReady
                let authenticator = self.services.authenticator
                let body: [String: Any] = [
                    "ready": ready, "node": self.services.identity.id,
                    "mode": self.services.isEmbedded ? "embedded" : "cluster",
                    "draining": self.services.draining.load(ordering: .relaxed),
                    "auth": authenticator.security.isAnonymous ? "anonymous" : "on",
                    "access": authenticator.summary,
                ]
                self.respond(
                    context: context,
                    request: request,
                    .json(ready ? .ok : .serviceUnavailable, JSON.serialize(body))
                )
            }
        default:
            self.respond(context: context, request: request, .error(FanfareError(.notFound, "no such route")))
        }
    }

    private func requireMethod(
        _ method: HTTPMethod,
        context: ChannelHandlerContext,
        request: HTTPRequest,
        _ body: () -> Void
    ) {
        guard request.method == method else {
            var response = HTTPResponse.error(FanfareError(.methodNotAllowed, "use \(method) for this route"))
            response.headers.add(name: "Allow", value: "\(method), OPTIONS")
            self.respond(context: context, request: request, response)
            return
        }
        body()
    }

    private func preflight(context: ChannelHandlerContext, request: HTTPRequest) {
        var response = HTTPResponse(status: .noContent, body: "")
        if self.services.allowedOrigin(request.headers.first(name: "origin")) != nil {
            response.headers.add(name: "Access-Control-Allow-Methods", value: "GET, POST, OPTIONS")
            response.headers.add(
                name: "Access-Control-Allow-Headers",
                value: "Content-Type, Authorization, Last-Event-ID, Cache-Control"
            )
            response.headers.add(name: "Access-Control-Max-Age", value: "600")
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
        Task(executorPreference: self.services.taskExecutors.executor(for: context.eventLoop)) {
            do {
                promise.succeed(try await body())
            } catch {
                promise.fail(error)
            }
        }
        return promise.futureResult
    }

    /// Runs `body` in a task on this connection's loop and answers with its response;
    /// FanfareErrors become their JSON error (credential refusals are counted), anything
    /// else a 500.
    func respondAsync(
        context: ChannelHandlerContext,
        request: HTTPRequest,
        _ body: @escaping @Sendable () async throws -> HTTPResponse
    ) {
        let logger = self.services.logger
        let metrics = self.services.metrics
        let future = self.runTask(context: context) { () async -> HTTPResponse in
            do {
                return try await body()
            } catch let error as FanfareError {
                metrics.countRefusal(error)
                var response = HTTPResponse.error(error)
                if error.code == .tooManyRequests { response.headers.add(name: "Retry-After", value: "1") }
                return response
            } catch {
                logger.error("http.route.failed", metadata: ["error": "\(error)"])
                return .error(FanfareError(.internal, "internal error"))
            }
        }
        future.assumeIsolated().whenSuccess { response in
            self.respond(context: context, request: request, response)
        }
    }

    // MARK: Notify

    private func notify(context: ChannelHandlerContext, request: HTTPRequest) {
        let bus = self.services.bus
        let services = self.services
        let address = self.clientAddress(context: context, request: request)
        self.respondAsync(context: context, request: request) {
            // The credential first: a caller without one learns nothing about the body.
            let identity = try await services.authenticator.authorizePublish(request, address: address)
            if let type = request.headers.first(name: "content-type"),
                type.split(separator: ";").first?.trimmingWhitespace().lowercased() != "application/json"
            {
                throw FanfareError(.unsupportedMediaType, "send the body as Content-Type: application/json")
            }
            let target = try NotifyTarget(body: request.body)
            guard services.publishLimiter.allow(identity) else {
                services.metrics.refused(.publishRate)
                throw FanfareError(.tooManyRequests, "too many publishes for this credential; slow down")
            }
            let result: PublishResult
            do {
                result = try await bus.publish(target.request)
            } catch {
                services.metrics.publishFailures.increment()
                throw error
            }
            services.metrics.eventsPublished.increment()
            // Written by hand, keys in sorted order like every other answer: this is the
            // one answer on the publish path, and JSONSerialization cost more than the publish.
            var body = target.clientID.map { #"{"clientId":"# + JSON.quote($0) + "," } ?? "{"
            body += #""connections":\#(result.connections),"id":"# + JSON.quote(result.id)
            body += #","ok":true,"sent":\#(result.sent)}"#
            return .json(.ok, body)
        }
    }

    // MARK: Pages

    /// A browser page or one of its assets. The admin page itself is public: the data it
    /// shows and the publishing it does need the credentials it asks for.
    private static func page(_ path: String) -> HTTPResponse {
        let (body, type): (String, String) =
            switch path {
            case "client": (BrowserPages.clientHTML, "text/html; charset=utf-8")
            case "admin": (BrowserPages.adminHTML, "text/html; charset=utf-8")
            case "assets/fanfare.css": (BrowserPages.css, "text/css; charset=utf-8")
            case "assets/client.js": (BrowserPages.clientJS, "text/javascript; charset=utf-8")
            default: (BrowserPages.adminJS, "text/javascript; charset=utf-8")
            }
        var response = HTTPResponse(status: .ok, body: body)
        response.headers.add(name: "Content-Type", value: type)
        response.headers.add(name: "Cache-Control", value: "no-cache")
        response.headers.add(name: "X-Content-Type-Options", value: "nosniff")
        response.headers.add(
            name: "Content-Security-Policy",
            value: "default-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
        )
        return response
    }

    // MARK: Counts

    private func prometheus() -> HTTPResponse {
        let counts = self.services.hub.snapshot()
        let text = self.services.metrics.render(
            connections: counts.connections,
            clients: counts.clients,
            channels: counts.channels.count,
            ready: self.services.isReady
        )
        var response = HTTPResponse(status: .ok, body: String(decoding: text, as: UTF8.self))
        response.headers.replaceOrAdd(name: "Content-Type", value: "text/plain; version=0.0.4; charset=utf-8")
        return response
    }

    private static func metrics(_ services: NodeServices) async throws -> HTTPResponse {
        let snapshot = try await services.registry.snapshot()
        let now = WallClock.milliseconds()
        let total = snapshot.totalConnections
        let clients = snapshot.clients.count
        let nodes: [[String: Any]] = snapshot.nodes.map { row in
            [
                "nodeId": row.id, "address": row.address, "version": row.version, "startedAt": row.startedAt,
                "uptimeSeconds": max(0, (now - row.startedAt) / 1000), "connections": row.connections,
                "clients": row.clients, "lastSeen": row.lastSeen,
            ]
        }
        let average = clients == 0 ? 0 : (Double(total) / Double(clients) * 100).rounded() / 100
        let this: [String: Any] = [
            "nodeId": services.identity.id,
            "eventsPublished": services.metrics.eventsPublished.current,
            "publishFailures": services.metrics.publishFailures.current,
            "deliveries": services.metrics.deliveries.current,
            "eventsReplayed": services.metrics.eventsReplayed.current,
            "resetsSent": services.metrics.resetsSent.current,
            "slowConsumerCloses": services.metrics.slowConsumerCloses.current,
            "redisReconnects": services.metrics.redisReconnects.current,
        ]
        let body: [String: Any] = [
            "totalConnections": total, "totalClients": clients, "averageConnectionsPerClient": average,
            "nodes": nodes, "thisNode": this,
        ]
        return .json(.ok, JSON.serialize(body))
    }

    private static func clients(_ services: NodeServices) async throws -> HTTPResponse {
        let snapshot = try await services.registry.snapshot()
        let clients: [[String: Any]] = snapshot.clients.sorted { $0.key < $1.key }.map {
            ["clientId": $0.key, "connections": $0.value]
        }
        return .json(.ok, JSON.serialize(["totalClients": clients.count, "clients": clients] as [String: Any]))
    }

    private static func client(_ services: NodeServices, id: String) async throws -> HTTPResponse {
        guard ChannelName.isValidID(id) else { throw FanfareError(.badRequest, "invalid client id") }
        let rows = try await services.registry.client(id)
        guard !rows.isEmpty else { throw FanfareError(.notFound, "client \(id) is not connected") }
        let nodes: [[String: Any]] = rows.map { ["nodeId": $0.node, "connections": $0.connections] }
        let body: [String: Any] = [
            "clientId": id, "connections": rows.reduce(0) { $0 + $1.connections }, "nodes": nodes,
        ]
        return .json(.ok, JSON.serialize(body))
    }
}
