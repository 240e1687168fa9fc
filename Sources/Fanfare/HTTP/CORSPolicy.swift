internal import NIOHTTP1

/// Which browser origins may read the node's answers and streams (CORS).
///
/// An allowed origin is reflected in `Access-Control-Allow-Origin` with `Vary: Origin`
/// (plus `Access-Control-Allow-Credentials: true` when configured); any other origin gets
/// no CORS headers at all, so the browser keeps the answer from the page.
struct CORSPolicy: Sendable {
    /// `*` (any origin), an exact origin such as `https://app.example.org`, or
    /// `*.example.com` (any subdomain, any scheme and port).
    let origins: [String]
    let allowCredentials: Bool

    /// The origin to reflect, or `nil` when `origin` is not allowed (or absent, or `null`).
    func allowedOrigin(_ origin: String?) -> String? {
        guard let origin, !origin.isEmpty, origin != "null" else { return nil }
        let host = Self.host(ofOrigin: origin)
        for pattern in self.origins {
            if pattern == "*" || pattern == origin { return origin }
            if pattern.hasPrefix("*."), let host, host.hasSuffix(pattern.dropFirst()) { return origin }
        }
        return nil
    }

    /// The CORS headers of any response to `origin` (none when it is not allowed).
    func headers(origin: String?) -> [(String, String)] {
        guard let allowed = self.allowedOrigin(origin) else { return [] }
        var headers = [("Access-Control-Allow-Origin", allowed), ("Vary", "Origin")]
        if self.allowCredentials {
            headers.append(("Access-Control-Allow-Credentials", "true"))
        }
        return headers
    }

    /// The extra headers of a preflight (`OPTIONS`) answer to `origin`.
    func preflightHeaders(origin: String?) -> [(String, String)] {
        guard self.allowedOrigin(origin) != nil else { return [] }
        return [
            ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
            ("Access-Control-Allow-Headers", "Content-Type, Authorization, Last-Event-ID, Cache-Control"),
            ("Access-Control-Max-Age", "600"),
        ]
    }

    /// `https://a.example.com:8443` → `a.example.com`.
    private static func host(ofOrigin origin: String) -> String? {
        let parts = origin.split(separator: "/", omittingEmptySubsequences: true)
        guard parts.count >= 2, parts[0].hasSuffix(":") else { return nil }
        return String(parts[1].prefix { $0 != ":" })
    }
}
