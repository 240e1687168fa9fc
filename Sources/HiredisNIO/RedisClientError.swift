/// Every error HiredisNIO throws.
///
/// Compare ``code`` to tell cases apart; ``message`` is meant for people and, for
/// ``Code/serverError``, carries the server's own text (for example `WRONGTYPE …`).
public struct RedisClientError: Error, CustomStringConvertible, Sendable {
    /// What went wrong.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case serverError
            case connectionClosed
            case connectTimeout
            case commandTimeout
            case protocolError
            case invalidURL
            case unsupported
            case clientClosed
            case notSent
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// Redis answered the command with an error reply.
        public static let serverError = Code(.serverError)
        /// The connection closed (or was lost) before the reply arrived.
        public static let connectionClosed = Code(.connectionClosed)
        /// The TCP connection could not be set up in time.
        public static let connectTimeout = Code(.connectTimeout)
        /// No reply arrived within the command timeout; the connection was closed.
        public static let commandTimeout = Code(.commandTimeout)
        /// The server sent bytes that are not RESP, or a reply nobody asked for.
        public static let protocolError = Code(.protocolError)
        /// A `redis://` URL could not be understood.
        public static let invalidURL = Code(.invalidURL)
        /// A feature was asked for that this client does not provide.
        public static let unsupported = Code(.unsupported)
        /// The caller closed the client.
        public static let clientClosed = Code(.clientClosed)
        /// The command was never written, so it did not run (no server could be reached,
        /// or no primary serves its slot); `underlying` says why.
        public static let notSent = Code(.notSent)

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

    /// A TLS connection that could not be made (``message`` says why: an untrusted
    /// certificate, a client certificate refused, …).
    public var isTLSFailure: Bool { self.message.hasPrefix("TLS to ") }

    public var description: String {
        if let underlying {
            return "RedisClientError(\(self.code)): \(self.message) (\(underlying))"
        }
        return "RedisClientError(\(self.code)): \(self.message)"
    }
}
