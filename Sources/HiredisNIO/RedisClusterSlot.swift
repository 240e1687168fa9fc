/// Redis Cluster's hash slots: which of the 16,384 slots (and so which primary) a key
/// belongs to, and the redirections a cluster answers with when a key lives elsewhere.
public enum RedisClusterSlot {
    public static let count = 16_384

    /// The slot of `key`: CRC16 (XMODEM) of its hash tag, the bytes between the first `{`
    /// and the first `}` after it when there are any, else of the whole key; keys that
    /// share a tag share a slot.
    public static func of(_ key: some Collection<UInt8>) -> Int {
        Int(Self.crc16(Self.hashed(key))) % Self.count
    }

    public static func of(_ key: String) -> Int {
        Self.of(key.utf8)
    }

    /// The part of `key` that is hashed.
    static func hashed<Key: Collection<UInt8>>(_ key: Key) -> Key.SubSequence {
        guard let open = key.firstIndex(of: UInt8(ascii: "{")) else { return key[...] }
        let afterOpen = key.index(after: open)
        guard let close = key[afterOpen...].firstIndex(of: UInt8(ascii: "}")), close != afterOpen else {
            return key[...]
        }
        return key[afterOpen..<close]
    }

    /// CRC16 with polynomial 0x1021, initial value 0, no reflection (XMODEM), bit by bit.
    static func crc16(_ bytes: some Sequence<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc ^= UInt16(byte) << 8
            for _ in 0..<8 {
                crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
            }
        }
        return crc
    }
}

/// A cluster's answer that a key's slot is served elsewhere: `MOVED` (for good: update
/// the slot map) or `ASK` (during a migration: send `ASKING`, then the command, there, once).
public struct RedisRedirection: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case moved
        case ask
    }

    public var kind: Kind
    public var slot: Int
    public var host: String
    public var port: Int

    public init(kind: Kind, slot: Int, host: String, port: Int) {
        self.kind = kind
        self.slot = slot
        self.host = host
        self.port = port
    }

    /// Reads an error reply such as `MOVED 3999 127.0.0.1:6381` or `ASK 3999 [::1]:6381`;
    /// `nil` for any other error.
    public init?(error message: String) {
        let parts = message.split(separator: " ")
        guard parts.count == 3, let slot = Int(parts[1]), (0..<RedisClusterSlot.count).contains(slot) else {
            return nil
        }
        switch parts[0] {
        case "MOVED": self.kind = .moved
        case "ASK": self.kind = .ask
        default: return nil
        }
        let address = parts[2]
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
            (1...65535).contains(port)
        else { return nil }
        var host = address[..<colon]
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        self.slot = slot
        self.host = String(host)
        self.port = port
    }
}
