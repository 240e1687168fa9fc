/// The body of every error answer: `{"code":N,"error":"…","ok":false}`, where `code` is
/// the HTTP status.
public struct ErrorAnswer: Codable, Sendable, Hashable {
    /// Always `false`.
    public var ok: Bool
    /// What went wrong, as a sentence.
    public var error: String
    /// The HTTP status, repeated.
    public var code: Int

    public init(error: String, code: Int) {
        self.ok = false
        self.error = error
        self.code = code
    }
}
