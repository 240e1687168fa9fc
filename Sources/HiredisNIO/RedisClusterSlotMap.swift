/// Which primary serves each of a Redis Cluster's hash slots, as `CLUSTER SLOTS` told it.
///
/// A value type with no I/O: ``RedisClient`` keeps one, replaces it after each refresh,
/// and moves single slots as `MOVED` replies say.
public struct RedisClusterSlotMap: Sendable, Equatable {
    /// The primaries, each once, in the order `CLUSTER SLOTS` first named them.
    public private(set) var primaries: [RedisAddress]
    /// Per slot, the index of its primary in `primaries`; -1 where no primary serves it.
    private var owners: [Int16]

    /// A map where one server serves every slot (a lone Redis, or Sentinel's master).
    public init(single address: RedisAddress) {
        self.primaries = [address]
        self.owners = Array(repeating: 0, count: RedisClusterSlot.count)
    }

    /// Reads a `CLUSTER SLOTS` reply: `[[first, last, [host, port, id…], replica…], …]`.
    /// An empty host (a node that does not know its own address) is the one that was
    /// asked, `askedHost`.
    public init(slots reply: RESPValue, askedHost: String) throws {
        guard let ranges = reply.array else {
            throw RedisClientError(.protocolError, "CLUSTER SLOTS answered \(reply)")
        }
        self.primaries = []
        self.owners = Array(repeating: -1, count: RedisClusterSlot.count)
        var index: [RedisAddress: Int16] = [:]
        for range in ranges {
            guard let parts = range.array, parts.count >= 3, let first = parts[0].int, let last = parts[1].int,
                0 <= first, first <= last, last < Int64(RedisClusterSlot.count), let node = parts[2].array,
                node.count >= 2, let host = node[0].string, let port = node[1].int, (1...65535).contains(port)
            else {
                throw RedisClientError(.protocolError, "CLUSTER SLOTS answered a range it cannot mean: \(range)")
            }
            let address = RedisAddress(host: host.isEmpty || host == "?" ? askedHost : host, port: Int(port))
            let owner: Int16
            if let known = index[address] {
                owner = known
            } else {
                owner = Int16(self.primaries.count)
                index[address] = owner
                self.primaries.append(address)
            }
            for slot in Int(first)...Int(last) { self.owners[slot] = owner }
        }
    }

    /// The primary serving `slot`, or `nil` when none does (the cluster is incomplete).
    public func primary(forSlot slot: Int) -> RedisAddress? {
        guard self.owners.indices.contains(slot) else { return nil }
        let owner = self.owners[slot]
        return owner < 0 ? nil : self.primaries[Int(owner)]
    }

    /// Whether every slot has a primary.
    public var coversEverySlot: Bool { !self.owners.contains(-1) }

    /// Records that `slot` is now served by `address` (a `MOVED` reply).
    public mutating func move(slot: Int, to address: RedisAddress) {
        guard self.owners.indices.contains(slot) else { return }
        if let known = self.primaries.firstIndex(of: address) {
            self.owners[slot] = Int16(known)
        } else {
            self.owners[slot] = Int16(self.primaries.count)
            self.primaries.append(address)
        }
    }
}
