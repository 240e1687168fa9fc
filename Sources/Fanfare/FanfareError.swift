/// Errors of the node, each with the HTTP status it is answered with.
public struct FanfareError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable {
        public let status: Int
        private init(status: Int) { self.status = status }

        /// Malformed input: 400.
        public static let badRequest = Code(status: 400)
        /// Not allowed for this caller: 403.
        public static let forbidden = Code(status: 403)
        /// Nothing here: 404.
        public static let notFound = Code(status: 404)
        /// Wrong method: 405.
        public static let methodNotAllowed = Code(status: 405)
        /// Body too large: 413.
        public static let payloadTooLarge = Code(status: 413)
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
