import Synchronization

/// A stream's identity in the hub, never reused while the node runs.
///
/// An object's address is reused as soon as the object is freed: a stream that closed
/// while its attachment was on its way to its loop could otherwise have that attachment
/// applied to a new stream at the same address, with another stream's positions.
///
/// It also names the stream's event loop (its index among the node's loops), so the hub
/// sends what concerns the stream to that loop alone.
struct StreamID: Hashable, Sendable, CustomStringConvertible {
    /// The loop's index in the top byte, the counter below.
    private let value: UInt64

    private static let counter = Atomic<UInt64>(0)
    private static let loopShift: UInt64 = 56

    /// A new id, unique in the process, of a stream on loop `loop` (0 to 255).
    static func next(loop: Int = 0) -> StreamID {
        let count = Self.counter.wrappingAdd(1, ordering: .relaxed).newValue & ((1 << Self.loopShift) - 1)
        return StreamID(value: UInt64(clamping: min(max(loop, 0), 255)) << Self.loopShift | count)
    }

    /// The index of the stream's loop.
    var loop: Int { Int(self.value >> Self.loopShift) }

    /// The stream's loop as a bit of a set of loops (the last bit stands for loops 63 and up).
    var loopBit: UInt64 { 1 << UInt64(min(self.loop, 63)) }

    var description: String { "stream-\(self.value & ((1 << Self.loopShift) - 1))@\(self.loop)" }
}
