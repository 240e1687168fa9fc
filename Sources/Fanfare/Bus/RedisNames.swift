/// Builds every Redis key and pub/sub channel name from one prefix.
struct RedisNames: Sendable {
    let prefix: String

    func pubsubChannel(_ channel: String) -> String { "\(self.prefix):c:\(channel)" }
    /// The inverse of ``pubsubChannel(_:)``; `nil` for names that are not ours.
    func channel(fromPubSub name: String) -> String? {
        let head = "\(self.prefix):c:"
        guard name.hasPrefix(head) else { return nil }
        return String(name.dropFirst(head.count))
    }
    var history: String { "\(self.prefix):history" }
    var nodes: String { "\(self.prefix):nodes" }
    func nodeInfo(_ id: String) -> String { "\(self.prefix):node:\(id)" }
    func nodeCounts(_ id: String) -> String { "\(self.prefix):node:\(id):counts" }
}
