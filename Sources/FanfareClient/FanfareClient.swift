internal import AsyncHTTPClient
internal import FanfareAPI
internal import NIOCore
internal import NIOHTTP1
internal import NIOSSL
public import ServerSentEvents

/// An HTTP client for Fanfare nodes, over `http://` or `https://` (TLS through
/// async-http-client): one request and its answer, or a stream of events. The `fanfare`
/// command uses it; so can any Swift service that publishes.
///
/// Call ``shutdown()`` when done with it.
public struct FanfareClient: Sendable {
    /// A complete answer.
    public struct Response: Sendable {
        public var status: Int
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]

        /// The body as text.
        public var text: String { String(decoding: self.body, as: UTF8.self) }

        public func header(_ name: String) -> String? {
            self.headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }

        /// The body as one of the API's answer types.
        public func decode<Answer: Decodable>(_ type: Answer.Type) throws -> Answer {
            do {
                return try APIJSON.decode(type, from: self.body)
            } catch {
                throw FanfareClientError(
                    .invalidAnswer,
                    "the answer (status \(self.status)) is not a \(type): \(self.text.prefix(200))",
                    underlying: error
                )
            }
        }
    }

    /// The largest answer body read.
    public static let maximumBodyBytes = 16 << 20

    private let http: HTTPClient

    /// - Parameter caCertificateFile: a PEM file of certificates to trust for `https://`
    ///   besides the system's (a self-signed or private CA's certificate).
    public init(caCertificateFile: String? = nil) {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caCertificateFile { tls.additionalTrustRoots = [.file(caCertificateFile)] }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.redirectConfiguration = .disallow
        // One attempt to connect: a refused connection or an untrusted certificate is
        // reported at once, not retried until the request's deadline.
        configuration.connectionPool.retryConnectionEstablishment = false
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    public func shutdown() async throws {
        try await self.http.shutdown()
    }

    /// Sends one request and returns the whole answer, or throws when it has not arrived
    /// within `timeout`.
    public func request(
        _ method: String,
        _ url: String,
        body: [UInt8]? = nil,
        headers: [(name: String, value: String)] = [],
        timeout: Duration = .seconds(30)
    ) async throws -> Response {
        var request = try Self.makeRequest(method, url, headers: headers)
        if let body {
            request.body = .bytes(ByteBuffer(bytes: body))
            if !headers.contains(where: { $0.name.lowercased() == "content-type" }) {
                request.headers.add(name: "Content-Type", value: "application/json")
            }
        }
        let (seconds, attoseconds) = timeout.components
        let deadline = NIODeadline.now() + .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            response = try await self.http.execute(request, deadline: deadline)
            bytes = try await response.body.collect(upTo: Self.maximumBodyBytes)
        } catch {
            throw FanfareClientError(.unreachable, "no answer from \(url)", underlying: error)
        }
        return Response(
            status: Int(response.status.code),
            headers: response.headers.map { (name: $0.name, value: $0.value) },
            body: Array(bytes.readableBytesView)
        )
    }

    /// How a stream ended.
    public struct StreamEnd: Sendable {
        /// The answer's status: 200 for a stream, anything else for a refusal.
        public var status: Int
        /// The body of a refusal (the JSON error); empty for a stream.
        public var body: String
    }

    /// Opens an SSE stream and hands every event to `onEvent` until the node closes the
    /// stream (or the calling task is cancelled). A refusal (any status but 200) returns at
    /// once with its body. The answer's head must come within `headTimeout`; the stream
    /// itself may last forever.
    public func stream(
        _ url: String,
        headers: [(name: String, value: String)] = [],
        headTimeout: Duration = .seconds(30),
        onEvent: @Sendable (ServerSentEvent) -> Void
    ) async throws -> StreamEnd {
        var request = try Self.makeRequest("GET", url, headers: headers)
        request.headers.replaceOrAdd(name: "Accept", value: "text/event-stream")
        let prepared = request
        let http = self.http
        let response = try await withThrowingTaskGroup(of: HTTPClientResponse?.self) { group in
            group.addTask {
                do {
                    return try await http.execute(prepared, deadline: .distantFuture)
                } catch {
                    throw FanfareClientError(.unreachable, "no stream from \(url)", underlying: error)
                }
            }
            group.addTask {
                try await Task.sleep(for: headTimeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let response = first else {
                throw FanfareClientError(.timeout, "no answer from \(url) within \(headTimeout)")
            }
            return response
        }
        guard response.status == .ok else {
            let body = try await response.body.collect(upTo: Self.maximumBodyBytes)
            return StreamEnd(status: Int(response.status.code), body: String(buffer: body))
        }
        var parser = ServerSentEventParser()
        for try await chunk in response.body {
            parser.parse(chunk) { onEvent($0) }
        }
        return StreamEnd(status: 200, body: "")
    }

    private static func makeRequest(
        _ method: String,
        _ url: String,
        headers: [(name: String, value: String)]
    ) throws -> HTTPClientRequest {
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
            throw FanfareClientError(.invalidURL, "use an http:// or https:// URL, not \(url)")
        }
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        return request
    }
}
