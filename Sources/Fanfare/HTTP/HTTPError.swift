internal import NIOHTTP1

/// A refusal of the HTTP layer itself: no such route, wrong method, a request too large
/// or too slow, a body of the wrong type.
struct HTTPError: HTTPResponseError, CustomStringConvertible {
    var status: HTTPResponseStatus
    var message: String
    var headers: HTTPHeaders

    init(_ status: HTTPResponseStatus, _ message: String, headers: HTTPHeaders = HTTPHeaders()) {
        self.status = status
        self.message = message
        self.headers = headers
    }

    var description: String { "\(self.status.code) \(self.message)" }
}
