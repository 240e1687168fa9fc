import Synchronization

/// A stream's identity in the hub, never reused while the node runs.
///
/// An object's address is reused as soon as the object is freed: a stream that closed
/// while its attachment was on its way to its loop could otherwise have that attachment
/// applied to a new stream at the same address, with another stream's positions.
struct StreamID: Hashable, Sendable, CustomStringConvertible {
    let value: UInt64

    private static let counter = Atomic<UInt64>(0)

    /// A new id, unique in the process.
    static func next() -> StreamID {
        StreamID(value: Self.counter.wrappingAdd(1, ordering: .relaxed).newValue)
    }

    var description: String { "stream-\(self.value)" }
}
