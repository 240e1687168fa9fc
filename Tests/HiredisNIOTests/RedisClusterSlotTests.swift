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
}
