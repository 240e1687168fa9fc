/// Builds every Redis key, pub/sub channel and function name from one prefix.
///
/// Everything of one channel carries the channel as its hash tag (`{orders}`), so its
/// history, its pub/sub channel and its idempotency keys live in one Redis Cluster slot
/// and one function call touches only that slot.
struct RedisNames: Sendable {
    let prefix: String

    /// The history stream of `channel`: `<prefix>:h:{<channel>}`.
    func history(_ channel: String) -> String { "\(self.prefix):h:{\(channel)}" }
    /// The pub/sub channel of `channel`: `<prefix>:c:{<channel>}`.
    func pubsubChannel(_ channel: String) -> String { "\(self.prefix):c:{\(channel)}" }
    /// An idempotency key of `channel`: `<prefix>:i:{<channel>}:<key>`.
    func idempotency(_ channel: String, key: String) -> String { "\(self.prefix):i:{\(channel)}:\(key)" }

    /// The places of `user`'s streams under its connection limit, a sorted set:
    /// `<prefix>:u:{user:<id>}` (the user channel's hash tag, so its function can end a
    /// stream with a disconnect request on that channel).
    func userPlaces(_ user: String) -> String { "\(self.prefix):u:{\(ChannelName.user(user))}" }
    /// The keys of `channel`'s presence, all in the slot of `presence:<channel>`: its
    /// leases (a sorted set), its users' stream counts (a hash) and its history.
    func presence(_ channel: String) -> [String] {
        let name = ChannelName.presence(channel)
        return ["\(self.prefix):p:{\(name)}", "\(self.prefix):q:{\(name)}", self.history(name)]
    }
    /// The presence channels any node has streams on, and the lock of their sweep.
    var presenceIndex: String { "\(self.prefix):{registry}:presence" }
    var presenceSweepLock: String { "\(self.prefix):{registry}:presence-sweep" }

    /// The answers to disconnect request `id`, one count per node: `<prefix>:d:{<id>}`.
    func disconnectAnswers(_ id: String) -> String { "\(self.prefix):d:{\(id)}" }

    /// The inverse of ``pubsubChannel(_:)``; `nil` for names that are not ours.
    func channel(fromPubSub name: String) -> String? {
        let head = "\(self.prefix):c:{"
        guard name.hasPrefix(head), name.hasSuffix("}"), name.utf8.count > head.utf8.count + 1 else { return nil }
        return String(name.dropFirst(head.count).dropLast())
    }

    /// The registry's keys share the hash tag `{registry}`: one slot holds them all, so one
    /// function call reads every node's row.
    var nodes: String { "\(self.prefix):{registry}:nodes" }
    func nodeInfo(_ id: String) -> String { "\(self.prefix):{registry}:node:\(id)" }
    func nodeCounts(_ id: String) -> String { "\(self.prefix):{registry}:node:\(id):counts" }

    /// The function library of this prefix, and each function's name: `<prefix>_publish`.
    var library: String { self.prefix }
    func function(_ name: String) -> String { "\(self.prefix)_\(name)" }

    /// Whether `prefix` can name keys and functions: 1-32 of `A-Z a-z 0-9 _`, starting
    /// with a letter (a function name must be a Lua-safe identifier).
    static func isValidPrefix(_ prefix: String) -> Bool {
        let utf8 = prefix.utf8
        guard (1...32).contains(utf8.count), let first = utf8.first, Self.isLetter(first) else { return false }
        return utf8.allSatisfy {
            Self.isLetter($0) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "_")
        }
    }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
            || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
    }
}
