internal import FanfareAPI
internal import NIOCore
internal import NIOHTTP1

/// A complete (non-streaming) response: status, extra headers, body.
struct HTTPResponse: Sendable {
    var status: HTTPResponseStatus
    var headers: HTTPHeaders = HTTPHeaders()
    var body: ByteBuffer

    init(status: HTTPResponseStatus, headers: HTTPHeaders = HTTPHeaders(), body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A JSON answer written by hand (the publish path) or already encoded.
    static func json(_ status: HTTPResponseStatus = .ok, _ body: ByteBuffer) -> HTTPResponse {
        var response = HTTPResponse(status: status, body: body)
        response.headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
        return response
    }

    /// One of the API's answer types, in the API's JSON encoding (``APIJSON``).
    static func answer(_ status: HTTPResponseStatus = .ok, _ answer: some Encodable) -> HTTPResponse {
        do {
            return .json(status, ByteBuffer(bytes: try APIJSON.encode(answer)))
        } catch {
            return .error(HTTPError(.internalServerError, "internal error"))
        }
    }

    /// The answer to `error`: its own status, headers and message when it is an
    /// ``HTTPResponseError``, else 500 `internal error` (its text could say too much).
    static func error(_ error: any Error) -> HTTPResponse {
        guard let error = error as? any HTTPResponseError else {
            return .error(HTTPError(.internalServerError, "internal error"))
        }
        var response = HTTPResponse.answer(
            error.status,
            ErrorAnswer(error: error.message, code: Int(error.status.code))
        )
        for (name, value) in error.headers { response.headers.replaceOrAdd(name: name, value: value) }
        return response
    }
}
