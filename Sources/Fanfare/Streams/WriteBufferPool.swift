internal import NIOCore

/// The write buffers one loop's streams fill during a batch, kept for the next batch once
/// the socket has taken their bytes: a busy loop allocates almost nothing per delivery.
///
/// Loop-confined (owned by the loop's ``LocalHub``). Bounded in count and in the size of
/// a buffer it keeps, so a burst leaves at most `limit × maximumCapacity` bytes behind.
struct WriteBufferPool {
    private var spare: [ByteBuffer] = []
    let limit: Int
    let maximumCapacity: Int

    init(limit: Int = 256, maximumCapacity: Int = 16_384) {
        self.limit = limit
        self.maximumCapacity = maximumCapacity
    }

    /// Buffers kept now.
    var count: Int { self.spare.count }

    /// An empty buffer with room for at least `capacity` bytes.
    mutating func take(capacity: Int) -> ByteBuffer {
        guard var buffer = self.spare.popLast() else {
            return ByteBufferAllocator().buffer(capacity: capacity)
        }
        buffer.reserveCapacity(capacity)
        return buffer
    }

    /// Keeps `buffer` when nothing else holds its storage (the socket wrote all of it) and
    /// there is room; otherwise lets it go.
    mutating func recycle(_ buffer: inout ByteBuffer) {
        guard self.spare.count < self.limit, buffer.capacity <= self.maximumCapacity,
            buffer.modifyIfUniquelyOwned({ $0.clear() }) != nil
        else { return }
        self.spare.append(buffer)
    }
}
