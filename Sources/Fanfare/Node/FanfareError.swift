/// Every error the node throws.
///
/// Compare ``code`` to tell cases apart; ``message`` is a sentence meant for people, and
/// is what ``description`` prints. How a code is answered over HTTP is decided in the HTTP
/// layer (`FanfareError+HTTPResponseError.swift`), not here.
public struct FanfareError: Error, CustomStringConvertible, CustomDebugStringConvertible, Sendable {
    /// What went wrong.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case invalidInput
            case unauthenticated
            case forbidden
            case notFound
            case limitExceeded
            case conflict
            case unavailable
            case outcomeUnknown
            case invalidConfiguration
            case internalError
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The input is malformed or names something invalid: a body, an id, a channel.
        public static let invalidInput = Code(.invalidInput)
        /// No valid credential: missing, malformed, expired or badly signed.
        public static let unauthenticated = Code(.unauthenticated)
        /// A valid credential that does not allow this.
        public static let forbidden = Code(.forbidden)
        /// What was asked for is not there, such as a client that is not connected.
        public static let notFound = Code(.notFound)
        /// Over a connection or rate limit.
        public static let limitExceeded = Code(.limitExceeded)
        /// The request contradicts what is there: a publish on a channel a final event ended.
        public static let conflict = Code(.conflict)
        /// Redis is unreachable, or the node is starting or draining.
        public static let unavailable = Code(.unavailable)
        /// Redis did not confirm something it may have done (a publish whose answer was
        /// lost): a retry with the same idempotency key is safe.
        public static let outcomeUnknown = Code(.outcomeUnknown)
        /// A setting that cannot work, found when the node starts.
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// A bug, or an answer from Redis the node does not understand.
        public static let internalError = Code(.internalError)

        public var description: String { "\(self.base)" }
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

    /// The message, with the underlying error when there is one: a sentence, fit for a
    /// log line or for `fanfare serve` refusing a setting at start.
    public var description: String {
        guard let underlying else { return self.message }
        return "\(self.message) (\(underlying))"
    }

    public var debugDescription: String {
        "FanfareError(\(self.code)): \(self.description) at \(self.file):\(self.line)"
    }
}
