internal import Foundation
internal import NIOHTTP1

/// The JSON body of a stream opened with POST: the parameters a GET carries in its query
/// (`clientId`, `userId`, `channels`, `lastEventId`, `token`, and `from` for a run), for
/// clients that open streams with `fetch` and keep tokens and cursors out of URLs.
///
/// The body's values go into the request's query, where the stream's admission reads them
/// (a body value wins over a query parameter of the same name), so a stream opened either
/// way is admitted, limited and resumed by one path.
enum StreamRequestBody {
    /// The fields a route's body may hold.
    enum Route {
        case stream
        case run

        var fields: [String] {
            switch self {
            case .stream: ["clientId", "userId", "channels", "lastEventId", "token"]
            case .run: ["clientId", "lastEventId", "token", "from"]
            }
        }
    }

    /// Puts the body's fields into `request.query`; an empty body adds nothing. Throws a
    /// 400 for a body that is not one JSON object, an unknown field or a wrong type, and a
    /// 415 for a body sent as another content type.
    static func merge(into request: inout HTTPRequest, route: Route) throws {
        if let type = request.headers.first(name: "content-type"),
            type.split(separator: ";").first?.trimmingWhitespace().lowercased() != "application/json"
        {
            throw HTTPError(.unsupportedMediaType, "send the body as Content-Type: application/json")
        }
        guard request.body.contains(where: { !Self.isWhitespace($0) }) else { return }
        guard JSONObjectReader.fields(of: request.body) != nil,
            let object = try? JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any]
        else {
            throw FanfareError(.invalidInput, "the body must be a JSON object")
        }
        let allowed = route.fields
        for key in object.keys.sorted() where !allowed.contains(key) {
            let hint = route == .run && (key == "channels" || key == "userId") ? " (a run follows its one channel)" : ""
            throw FanfareError(
                .invalidInput,
                "unknown field \(key)\(hint): use \(allowed.joined(separator: ", "))"
            )
        }
        for (key, value) in object {
            if key == "channels" {
                request.query[key] = try Self.channels(value)
                continue
            }
            guard let text = value as? String, !(value is NSNumber) else {
                throw FanfareError(.invalidInput, "\(key) must be a string")
            }
            request.query[key] = text
        }
    }

    /// `channels` as the query writes it: an array of names, or one comma-separated string.
    private static func channels(_ value: Any) throws -> String {
        if let text = value as? String { return text }
        guard let names = value as? [Any] else {
            throw FanfareError(.invalidInput, "channels must be an array of channel names")
        }
        var result: [String] = []
        for name in names {
            guard let name = name as? String, !name.contains(",") else {
                throw FanfareError(.invalidInput, "channels must be an array of channel names")
            }
            result.append(name)
        }
        return result.joined(separator: ",")
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
            || byte == UInt8(ascii: "\t")
    }
}
