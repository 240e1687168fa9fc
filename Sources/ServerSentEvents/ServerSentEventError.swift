/// Why an event could not be encoded.
public struct ServerSentEventError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case invalidID
            case invalidEventName
            case invalidRetry
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The id contains CR, LF or NUL.
        public static let invalidID = Code(.invalidID)
        /// The event name contains CR, LF or NUL.
        public static let invalidEventName = Code(.invalidEventName)
        /// The retry time is negative.
        public static let invalidRetry = Code(.invalidRetry)

        public var description: String { "\(self.base)" }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "ServerSentEventError(\(self.code)): \(self.message)" }
}
