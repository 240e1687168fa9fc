internal import NIOHTTP1

/// What a request asks for, once its path and method matched a route.
enum Route: Sendable, Equatable {
    /// `/api/sse/subscribe/{clientId}`: a stream, the client id in the path.
    case subscribe
    /// `/api/notifications/stream`, `/api/events`: a stream, the client id in the query.
    case stream
    /// `/api/sse/runs/{channel}`: a stream of one channel that ends after its final event.
    case run
    /// `/api/sse/history/{channel}`: a channel's retained events as JSON.
    case history
    case notify
    /// `/api/sse/disconnect`: ends matching streams on every node.
    case disconnect
    case clusterMetrics
    case clients
    case client
    /// `/api/sse/presence/{channel}`: who is on a channel, cluster-wide (`--presence`).
    case presence
    case openAPI
    case metrics
    case healthz
    case readyz
    /// A browser page or asset (``BrowserPages``).
    case page
}

/// Every route the node serves, as data: the handler dispatches by it, and the OpenAPI
/// test checks the published description against it, route by route.
enum RouteTable {
    struct Entry: Sendable {
        let route: Route
        let method: HTTPMethod
        /// The path as the OpenAPI description writes it (`{name}` stands for one segment).
        let template: String
        /// Served on the operations address (`--ops-address`) too.
        let operations: Bool

        init(_ method: HTTPMethod, _ template: String, _ route: Route, operations: Bool = false) {
            self.method = method
            self.template = template
            self.route = route
            self.operations = operations
        }

        /// `GET /api/sse/clients/{clientId}`, as the OpenAPI test lists operations.
        var operation: String { "\(self.method) \(self.template)" }
    }

    static let entries: [Entry] =
        [
            Entry(.GET, "/api/sse/subscribe/{clientId}", .subscribe),
            Entry(.POST, "/api/sse/subscribe/{clientId}", .subscribe),
            Entry(.GET, "/api/notifications/stream", .stream),
            Entry(.POST, "/api/notifications/stream", .stream),
            Entry(.GET, "/api/events", .stream),
            Entry(.POST, "/api/events", .stream),
            Entry(.GET, "/api/sse/runs/{channel}", .run),
            Entry(.POST, "/api/sse/runs/{channel}", .run),
            Entry(.GET, "/api/sse/history/{channel}", .history),
            Entry(.POST, "/api/sse/notify", .notify),
            Entry(.POST, "/api/sse/disconnect", .disconnect),
            Entry(.GET, "/api/sse/metrics", .clusterMetrics),
            Entry(.GET, "/api/sse/clients", .clients),
            Entry(.GET, "/api/sse/clients/{clientId}", .client),
            Entry(.GET, "/api/sse/presence/{channel}", .presence),
            Entry(.GET, "/openapi.json", .openAPI),
            Entry(.GET, "/metrics", .metrics, operations: true),
            Entry(.GET, "/healthz", .healthz, operations: true),
            Entry(.GET, "/readyz", .readyz, operations: true),
        ] + BrowserPages.paths.map { Entry(.GET, "/" + $0, .page) }

    /// A request's match: the route's entries for its path (one per method), and the
    /// segment that stood for the path's `{name}`, if it has one.
    struct Match {
        let entries: [Entry]
        let parameter: String?

        /// The entry for `method`, or `nil` when the path is served by other methods.
        func entry(for method: HTTPMethod) -> Entry? {
            self.entries.first { $0.method == method }
        }

        var methods: [HTTPMethod] { self.entries.map(\.method) }
    }

    /// The entries whose template matches `segments` (no `{name}` is ever empty).
    static func match(_ segments: [String]) -> Match? {
        let path = "/" + segments.joined(separator: "/")
        if let entries = Self.literal[path] { return Match(entries: entries, parameter: nil) }
        for (parts, entries) in Self.parameterized where parts.count == segments.count {
            var parameter: String?
            var matches = true
            for (part, segment) in zip(parts, segments) {
                if part.hasPrefix("{") {
                    parameter = segment
                } else if part != segment {
                    matches = false
                    break
                }
            }
            if matches { return Match(entries: entries, parameter: parameter) }
        }
        return nil
    }

    /// Paths without a `{name}`, looked up whole: most requests are one of these.
    private static let literal: [String: [Entry]] = Dictionary(
        grouping: Self.entries.filter { !$0.template.contains("{") },
        by: \.template
    )

    private static let parameterized: [(parts: [String], entries: [Entry])] = {
        let templates = Self.entries.filter { $0.template.contains("{") }
        let grouped = Dictionary(grouping: templates, by: \.template)
        return grouped.keys.sorted().map { template in
            (template.split(separator: "/").map(String.init), grouped[template] ?? [])
        }
    }()
}
