/// The answer of `GET /healthz`: `{"ok":true}` while the process serves.
public struct HealthAnswer: Codable, Sendable, Hashable {
    public var ok: Bool

    public init() {
        self.ok = true
    }
}
