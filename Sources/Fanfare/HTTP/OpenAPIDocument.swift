internal import NIOCore
internal import NIOHTTP1

/// The OpenAPI 3.0 description of the HTTP API (`Resources/openapi.json`, embedded in the
/// binary), served at `/openapi.json`. The test command validates the file, a test keeps
/// it and the router in step, and schemathesis fuzzes the API against it.
enum OpenAPIDocument {
    /// The answer, built once.
    static let response = HTTPResponse.json(.ok, ByteBuffer(bytes: PackageResources.openapi_json))
}
