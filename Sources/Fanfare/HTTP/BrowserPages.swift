internal import NIOCore
internal import NIOHTTP1

/// The browser pages (`/client`, `/admin`), their assets and the JavaScript client
/// (`/fanfare.js`): plain HTML, CSS and script in `Resources/`, embedded in the binary, with no build step and nothing fetched from
/// elsewhere, so they work offline and through nginx. Each answer is built once.
///
/// The pages are public: the data they show and the publishing they do need the
/// credentials they ask for.
enum BrowserPages {
    /// The answer for a page path (`client`, `admin`, `assets/…`), or `nil` for none.
    static func response(for path: String) -> HTTPResponse? {
        Self.responses[path]
    }

    /// Every page's path, for the route table.
    static var paths: [String] { Self.responses.keys.sorted() }

    private static let responses: [String: HTTPResponse] = [
        "client": Self.page(PackageResources.client_html, type: "text/html; charset=utf-8"),
        "admin": Self.page(PackageResources.admin_html, type: "text/html; charset=utf-8"),
        "assets/fanfare.css": Self.page(PackageResources.fanfare_css, type: "text/css; charset=utf-8"),
        "assets/client.js": Self.page(PackageResources.client_js, type: "text/javascript; charset=utf-8"),
        "assets/admin.js": Self.page(PackageResources.admin_js, type: "text/javascript; charset=utf-8"),
        // The JavaScript client (Clients/js), importable by any page: `import … from "/fanfare.js"`.
        "fanfare.js": Self.page(PackageResources.fanfare_js, type: "text/javascript; charset=utf-8"),
    ]

    private static func page(_ bytes: [UInt8], type: String) -> HTTPResponse {
        var response = HTTPResponse(status: .ok, body: ByteBuffer(bytes: bytes))
        response.headers.add(name: "Content-Type", value: type)
        response.headers.add(name: "Cache-Control", value: "no-cache")
        response.headers.add(name: "X-Content-Type-Options", value: "nosniff")
        response.headers.add(
            name: "Content-Security-Policy",
            value: "default-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
        )
        return response
    }
}
