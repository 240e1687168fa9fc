@testable import Fanfare

/// Reads and writes stream cursors (the SSE ids a node writes) the way a node does, so a
/// test can compare what a stream got with the positions publishes answered.
enum TestCursor {
    /// The position of `channel` in the cursor `id`, written as publish answers write
    /// positions (`<ms>-<seq>`); `nil` when `id` is not a cursor or lacks the channel.
    static func position(_ id: String?, _ channel: String) -> String? {
        guard let id, let positions = Cursor.decode(id) else { return nil }
        return positions[Cursor.tag(channel)]?.description
    }

    /// A position `<ms>-<seq>` as numbers, for comparing order (lexicographically).
    static func order(_ position: String) -> [UInt64] { position.split(separator: "-").compactMap { UInt64($0) } }

    /// A cursor for a stream on `channels` at `positions` (`<ms>-<seq>` by channel; absent
    /// channels at the start of their history).
    static func make(_ positions: [String: String], channels: [String]) -> String {
        Cursor(positions: channels.map { positions[$0].flatMap { StreamPosition($0) } ?? .zero })
            .text(tags: channels.map(Cursor.tag))
    }
}
