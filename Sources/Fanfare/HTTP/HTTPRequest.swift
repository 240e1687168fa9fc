internal import NIOHTTP1

/// The parts of a request the routes need: method, path segments, query, headers, body.
struct HTTPRequest: Sendable {
    var method: HTTPMethod
    var path: String
    var query: [String: String]
    var headers: HTTPHeaders
    var body: [UInt8] = []
    /// The path or query has a bad `%` escape or is not UTF-8 once decoded.
    var hasMalformedTarget = false
    /// The client keeps the connection open after the answer: HTTP/1.1 unless it says
    /// `Connection: close`, HTTP/1.0 only if it says `Connection: keep-alive`.
    var keepAlive: Bool

    init(head: HTTPRequestHead) {
        self.method = head.method
        self.headers = head.headers
        self.keepAlive = head.isKeepAlive
        let uri = head.uri
        let rawPath = uri.firstIndex(of: "?").map { uri[..<$0] } ?? Substring(uri)
        let decodedPath = PercentDecoding.decode(rawPath)
        self.path = decodedPath ?? String(rawPath)
        if let mark = uri.firstIndex(of: "?") {
            let parsed = Self.parseQuery(uri[uri.index(after: mark)...])
            self.query = parsed.query
            self.hasMalformedTarget = decodedPath == nil || !parsed.valid
        } else {
            self.query = [:]
            self.hasMalformedTarget = decodedPath == nil
        }
    }

    var segments: [Substring] { self.path.split(separator: "/", omittingEmptySubsequences: true) }

    /// The query's parameters (the first of repeated names wins), and whether every part
    /// decoded to UTF-8.
    static func parseQuery(_ text: Substring) -> (query: [String: String], valid: Bool) {
        var result: [String: String] = [:]
        var valid = true
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = PercentDecoding.decode(parts[0], plusIsSpace: true) else {
                valid = false
                continue
            }
            let value = parts.count > 1 ? PercentDecoding.decode(parts[1], plusIsSpace: true) : ""
            if value == nil { valid = false }
            if result[name] == nil { result[name] = value ?? "" }
        }
        return (result, valid)
    }
}
