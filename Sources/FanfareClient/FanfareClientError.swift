/// Every error ``FanfareClient`` throws of its own (the HTTP client's errors pass through).
public struct FanfareClientError: Error, CustomStringConvertible, Sendable {
    /// What went wrong.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case invalidURL
            case unreachable
            case timeout
            case invalidAnswer
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The URL is not `http://` or `https://`.
        public static let invalidURL = Code(.invalidURL)
        /// The node could not be reached or did not answer: refused, reset, or a TLS
        /// certificate this client does not trust (the underlying error says which).
        public static let unreachable = Code(.unreachable)
        /// No answer, or no stream head, within the time allowed.
        public static let timeout = Code(.timeout)
        /// The node answered something this client does not understand.
        public static let invalidAnswer = Code(.invalidAnswer)

        public var description: String { "\(self.base)" }
    }

    public var code: Code
    public var message: String
    public var underlying: (any Error)?

    public init(_ code: Code, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String {
        guard let underlying else { return self.message }
        return "\(self.message) (\(underlying))"
    }
}
