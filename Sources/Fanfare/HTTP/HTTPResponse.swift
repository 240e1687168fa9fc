internal import NIOCore
internal import NIOHTTP1

/// A complete (non-streaming) response: status, extra headers, JSON body.
struct HTTPResponse: Sendable {
    var status: HTTPResponseStatus
    var headers: HTTPHeaders = HTTPHeaders()
    var body: String

    static func json(_ status: HTTPResponseStatus = .ok, _ body: String) -> HTTPResponse {
        var response = HTTPResponse(status: status, body: body)
        response.headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
        return response
    }

    /// The error body every API error uses: `{"ok":false,"error":"…","code":N}`.
    static func error(_ error: FanfareError) -> HTTPResponse {
        .json(
            HTTPResponseStatus(statusCode: error.code.status),
            JSON.serialize(["ok": false, "error": error.message, "code": error.code.status] as [String: Any])
        )
    }
}
