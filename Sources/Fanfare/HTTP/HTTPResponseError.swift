internal import NIOHTTP1

/// An error that knows its HTTP answer: a status, a message for the JSON error body, and
/// any headers the status needs (`Allow`, `Retry-After`). Errors that are not one are
/// answered 500 `internal error`.
protocol HTTPResponseError: Error {
    var status: HTTPResponseStatus { get }
    var message: String { get }
    var headers: HTTPHeaders { get }
}

extension HTTPResponseError {
    var headers: HTTPHeaders { HTTPHeaders() }
}
