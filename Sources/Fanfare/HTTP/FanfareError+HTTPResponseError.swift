internal import NIOHTTP1

/// The HTTP answer of each ``FanfareError/Code``.
extension FanfareError: HTTPResponseError {
    var status: HTTPResponseStatus {
        switch self.code {
        case .invalidInput: .badRequest
        case .unauthenticated: .unauthorized
        case .forbidden: .forbidden
        case .notFound: .notFound
        case .limitExceeded: .tooManyRequests
        case .conflict: .conflict
        case .unavailable, .outcomeUnknown: .serviceUnavailable
        default: .internalServerError
        }
    }

    var headers: HTTPHeaders {
        // A refusal by rate: the client may try again in a second.
        self.code == .limitExceeded ? ["Retry-After": "1"] : HTTPHeaders()
    }
}
