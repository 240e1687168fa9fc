import NIOCore
import Testing

@testable import HiredisNIO

@Suite struct RedisClusterSlotTests {
    @Test func theChecksumIsXMODEMs() {
        // The check value of CRC-16/XMODEM, as the cluster specification gives it.
        #expect(RedisClusterSlot.crc16(Array("123456789".utf8)) == 0x31C3)
        #expect(RedisClusterSlot.crc16([UInt8]()) == 0)
    }

    @Test func aHashTagIsWhatIsHashed() {
        func hashed(_ key: String) -> String {
            String(decoding: RedisClusterSlot.hashed(Array(key.utf8)), as: UTF8.self)
        }
        #expect(hashed("fanfare:h:{orders}") == "orders")
        #expect(hashed("{user1000}.following") == "user1000")
        #expect(hashed("foo{}{bar}") == "foo{}{bar}")  // an empty first tag: the whole key
        #expect(hashed("foo{{bar}}zap") == "{bar")
        #expect(hashed("foo{bar}{zap}") == "bar")
        #expect(hashed("no tag") == "no tag")
        #expect(hashed("{unclosed") == "{unclosed")
        #expect(RedisClusterSlot.of("fanfare:h:{orders}") == RedisClusterSlot.of("fanfare:c:{orders}"))
        #expect((0..<RedisClusterSlot.count).contains(RedisClusterSlot.of("anything")))
    }

    @Test func redirectionsAreRead() {
        #expect(
            RedisRedirection(error: "MOVED 3999 127.0.0.1:6381")
                == RedisRedirection(kind: .moved, slot: 3999, host: "127.0.0.1", port: 6381)
        )
        #expect(
            RedisRedirection(error: "ASK 0 [::1]:7000")
                == RedisRedirection(kind: .ask, slot: 0, host: "::1", port: 7000)
        )
        for other in ["ERR unknown command", "MOVED 16384 h:1", "MOVED x h:1", "ASK 1 h", "MOVED 1 h:0", "MOVED 1"] {
            #expect(RedisRedirection(error: other) == nil, "\(other)")
        }
    }

    private func node(_ host: String, _ port: Int64) -> RESPValue {
        .array([.bulkString(.init(string: host)), .integer(port), .bulkString(.init(string: "id-\(port)"))])
    }

    @Test func aSlotMapIsReadFromClusterSlots() throws {
        let reply = RESPValue.array([
            .array([.integer(0), .integer(5460), self.node("127.0.0.1", 7000), self.node("127.0.0.1", 7003)]),
            .array([.integer(5461), .integer(10922), self.node("", 7001)]),
            .array([.integer(10923), .integer(16383), self.node("127.0.0.1", 7002)]),
        ])
        var map = try RedisClusterSlotMap(slots: reply, askedHost: "10.1.1.1")
        // An empty host is the node that was asked.
        #expect(
            map.primaries == [
                .init(host: "127.0.0.1", port: 7000), .init(host: "10.1.1.1", port: 7001),
                .init(host: "127.0.0.1", port: 7002),
            ]
        )
        #expect(map.primary(forSlot: 0) == .init(host: "127.0.0.1", port: 7000))
        #expect(map.primary(forSlot: 5461) == .init(host: "10.1.1.1", port: 7001))
        #expect(map.primary(forSlot: 16383) == .init(host: "127.0.0.1", port: 7002))
        #expect(map.primary(forSlot: 16384) == nil)
        #expect(map.coversEverySlot)
        // MOVED: the slot goes to the named node, known or new.
        map.move(slot: 3, to: .init(host: "127.0.0.1", port: 7002))
        #expect(map.primary(forSlot: 3) == .init(host: "127.0.0.1", port: 7002))
        map.move(slot: 4, to: .init(host: "127.0.0.1", port: 7009))
        #expect(map.primary(forSlot: 4) == .init(host: "127.0.0.1", port: 7009))
        #expect(map.primaries.count == 4)
    }

    @Test func anIncompleteOrBadSlotMapIsSaidSo() throws {
        let partial = try RedisClusterSlotMap(
            slots: .array([.array([.integer(0), .integer(99), self.node("h", 1)])]),
            askedHost: "h"
        )
        #expect(!partial.coversEverySlot)
        #expect(partial.primary(forSlot: 100) == nil)
        #expect(throws: RedisClientError.self) { try RedisClusterSlotMap(slots: .integer(1), askedHost: "h") }
        #expect(throws: RedisClientError.self) {
            try RedisClusterSlotMap(
                slots: .array([.array([.integer(9), .integer(2), self.node("h", 1)])]),
                askedHost: "h"
            )
        }
        #expect(throws: RedisClientError.self) {
            try RedisClusterSlotMap(
                slots: .array([.array([.integer(0), .integer(16384), self.node("h", 1)])]),
                askedHost: "h"
            )
        }
    }
}
