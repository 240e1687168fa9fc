/// Errors of the node, each with the HTTP status it is answered with.
public struct FanfareError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable {
        public let status: Int
        private init(status: Int) { self.status = status }

        /// Malformed input: 400.
        public static let badRequest = Code(status: 400)
        /// No valid credential (missing, malformed, expired or badly signed): 401.
        public static let unauthorized = Code(status: 401)
        /// Not allowed for this caller: 403.
        public static let forbidden = Code(status: 403)
        /// Nothing here: 404.
        public static let notFound = Code(status: 404)
        /// Wrong method: 405.
        public static let methodNotAllowed = Code(status: 405)
        /// The request's headers did not arrive in time: 408.
        public static let requestTimeout = Code(status: 408)
        /// Body too large: 413.
        public static let payloadTooLarge = Code(status: 413)
        /// Request target (path and query) too long: 414.
        public static let uriTooLong = Code(status: 414)
        /// A body in a content type the route does not take: 415.
        public static let unsupportedMediaType = Code(status: 415)
        /// Over a connection or rate limit: 429.
        public static let tooManyRequests = Code(status: 429)
        /// Request headers too large: 431.
        public static let headersTooLarge = Code(status: 431)
        /// Redis (or another dependency) is down: 503.
        public static let unavailable = Code(status: 503)
        /// A bug: 500.
        public static let `internal` = Code(status: 500)
    }

    public var code: Code
    public var message: String
    public var underlying: (any Error)?
    public var file: String
    public var line: Int

    public init(
        _ code: Code,
        _ message: String,
        underlying: (any Error)? = nil,
        file: String = #fileID,
        line: Int = #line
    ) {
        self.code = code
        self.message = message
        self.underlying = underlying
        self.file = file
        self.line = line
    }

    public var description: String {
        "FanfareError(\(self.code.status)): \(self.message)" + (self.underlying.map { " (\($0))" } ?? "")
    }
}
