internal import NIOCore

/// Consecutive events of one channel from one batch, laid out for delivery to every
/// stream of the channel: positions side by side and the bodies copied once into one
/// buffer, so a stream's share of the run is a single pass over plain memory (no
/// reference counting per event and stream).
///
/// Loop-confined; a ``LocalHub`` reuses one run for every batch.
struct EventRun {
    /// An event's place in its channel and where its body lies in ``bodies``.
    struct Link {
        var position: StreamPosition
        var predecessor: StreamPosition
        var start: Int32
        var length: Int32
    }

    private(set) var channel = ""
    /// The events themselves, for a stream that is not simply live on the channel.
    private(set) var events: ContiguousArray<BusEvent> = []
    private(set) var links: ContiguousArray<Link> = []
    private(set) var bodies = ByteBuffer()

    private static let keptCapacity = 1 << 20

    var count: Int { self.links.count }
    var bodyBytes: Int { self.bodies.readableBytes }

    /// Starts a new run with `event`.
    mutating func start(_ event: BusEvent) {
        self.channel = event.channel
        self.events.removeAll(keepingCapacity: true)
        self.links.removeAll(keepingCapacity: true)
        // Room kept for the next batch, unless one huge batch grew it.
        if self.bodies.capacity > Self.keptCapacity { self.bodies = ByteBuffer() }
        self.bodies.clear()
        self.append(event)
    }

    /// Adds `event` when it is on the run's channel; returns whether it did.
    mutating func extend(with event: BusEvent) -> Bool {
        guard event.channel == self.channel else { return false }
        self.append(event)
        return true
    }

    private mutating func append(_ event: BusEvent) {
        let start = Int32(truncatingIfNeeded: self.bodies.writerIndex)
        self.bodies.writeImmutableBuffer(event.body)
        self.links.append(
            Link(
                position: event.position,
                predecessor: event.predecessor,
                start: start,
                length: Int32(truncatingIfNeeded: event.body.readableBytes)
            )
        )
        self.events.append(event)
    }
}
