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

    init(head: HTTPRequestHead) {
        self.method = head.method
        self.headers = head.headers
        let uri = head.uri
        let rawPath = uri.firstIndex(of: "?").map { uri[..<$0] } ?? Substring(uri)
        let decodedPath = Self.percentDecoded(rawPath)
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
            guard let name = Self.percentDecoded(parts[0], plusIsSpace: true) else {
                valid = false
                continue
            }
            let value = parts.count > 1 ? Self.percentDecoded(parts[1], plusIsSpace: true) : ""
            if value == nil { valid = false }
            if result[name] == nil { result[name] = value ?? "" }
        }
        return (result, valid)
    }

    /// Decodes `%XX` escapes (and `+` in queries); `nil` when the result is not UTF-8.
    static func percentDecoded(_ text: Substring, plusIsSpace: Bool = false) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(Self.hex), let low = iterator.next().flatMap(Self.hex) else {
                    return nil
                }
                bytes.append(high << 4 | low)
            case UInt8(ascii: "+") where plusIsSpace:
                bytes.append(UInt8(ascii: " "))
            default:
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
