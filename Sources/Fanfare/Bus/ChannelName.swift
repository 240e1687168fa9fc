/// Channel names and the one place they become Redis names.
///
/// A channel is `client:<id>`, `user:<id>`, `broadcast`, or a topic the client asked for.
/// Every Redis key and pub/sub channel is built here, so moving to Redis Cluster (sharded
/// pub/sub, one log per shard) changes this file and the history code only.
enum ChannelName {
    static let broadcast = "broadcast"

    static func client(_ id: String) -> String { "client:\(id)" }
    static func user(_ id: String) -> String { "user:\(id)" }

    /// Whether `name` is a valid channel name: 1–128 of `A–Z a–z 0–9 _ . : @ -`.
    static func isValid(_ name: String) -> Bool {
        let utf8 = name.utf8
        guard (1...128).contains(utf8.count) else { return false }
        return utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"):
                true
            case UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "@"), UInt8(ascii: "-"):
                true
            default:
                false
            }
        }
    }

    /// Whether `name` is one of the nodes' own channels (`__…`, such as the delivery
    /// probe's), which no client may join or publish to.
    static func isReserved(_ name: String) -> Bool {
        name.utf8.starts(with: "__".utf8)
    }

    /// The channel of `channel`'s joins and leaves: `presence:<channel>`.
    static func presence(_ channel: String) -> String { "presence:\(channel)" }

    /// The channel whose presence `name` carries, when it is a presence channel.
    static func presenceOf(_ name: String) -> String? {
        guard name.hasPrefix("presence:"), name.utf8.count > 9 else { return nil }
        return String(name.dropFirst(9))
    }

    /// Whether a stream's place on `name` counts for its presence: a topic, not the
    /// client's, the user's or everyone's channel, nor a presence channel itself.
    static func hasPresence(_ name: String) -> Bool {
        name != Self.broadcast && !name.hasPrefix("client:") && !name.hasPrefix("user:")
            && !name.hasPrefix("presence:") && !Self.isReserved(name)
    }

    /// Whether `name` can be a run's channel, which a final event ends: a client's, a user's
    /// and everyone's channel never end.
    static func canEnd(_ name: String) -> Bool {
        name != Self.broadcast && !name.hasPrefix("client:") && !name.hasPrefix("user:")
    }

    /// Whether `id` can be a client or user id: the same alphabet, without `:`, 1–100 long.
    static func isValidID(_ id: String) -> Bool {
        id.utf8.count <= 100 && !id.contains(":") && self.isValid(id)
    }
}
