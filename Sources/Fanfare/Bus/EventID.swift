internal import NIOCore

/// A cluster-wide event id, `<milliseconds>-<sequence>` (the history stream's entry id).
/// Ordered; kept opaque outside the history code.
struct EventID: Comparable, Hashable, Sendable, CustomStringConvertible {
    var milliseconds: UInt64
    var sequence: UInt64

    init(milliseconds: UInt64, sequence: UInt64) {
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    /// Parses `123-4`; `nil` for anything else.
    init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let milliseconds = UInt64(parts[0]), let sequence = UInt64(parts[1]) else {
            return nil
        }
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    /// The id of a frame that starts with `id: <id>\n`, `nil` for frames without one.
    init?(frame: ByteBuffer) {
        let view = frame.readableBytesView
        guard view.starts(with: "id: ".utf8), let end = view.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let text = String(decoding: view[(view.startIndex + 4)..<end], as: UTF8.self)
        self.init(text)
    }

    static func < (lhs: EventID, rhs: EventID) -> Bool {
        (lhs.milliseconds, lhs.sequence) < (rhs.milliseconds, rhs.sequence)
    }

    var description: String { "\(self.milliseconds)-\(self.sequence)" }
}
