import NIOCore
import Testing

@testable import HiredisNIO

@Suite struct RedisPubSubPushTests {
    private func bulk(_ text: String) -> RESPValue { .bulkString(ByteBuffer(string: text)) }

    @Test func recognisesEveryPush() throws {
        #expect(
            try RedisPubSubPush(.array([self.bulk("message"), self.bulk("c"), self.bulk("p")]))
                == .message(channel: "c", payload: ByteBuffer(string: "p"))
        )
        #expect(
            try RedisPubSubPush(.array([self.bulk("pmessage"), self.bulk("c*"), self.bulk("c1"), self.bulk("p")]))
                == .patternMessage(pattern: "c*", channel: "c1", payload: ByteBuffer(string: "p"))
        )
        #expect(
            try RedisPubSubPush(.array([self.bulk("subscribe"), self.bulk("c"), .integer(1)]))
                == .subscribed(.channel, "c")
        )
        #expect(
            try RedisPubSubPush(.array([self.bulk("psubscribe"), self.bulk("c*"), .integer(1)]))
                == .subscribed(.pattern, "c*")
        )
        #expect(
            try RedisPubSubPush(.array([self.bulk("unsubscribe"), self.bulk("c"), .integer(0)]))
                == .unsubscribed(.channel, "c")
        )
        #expect(
            try RedisPubSubPush(.array([self.bulk("punsubscribe"), .null, .integer(0)])) == .unsubscribed(.pattern, "")
        )
        // Sharded pub/sub (Redis 7): `smessage` is a message like any other.
        #expect(
            try RedisPubSubPush(.array([self.bulk("smessage"), self.bulk("c"), self.bulk("p")]))
                == .message(channel: "c", payload: ByteBuffer(string: "p"))
        )
        #expect(
            try RedisPubSubPush(.array([self.bulk("ssubscribe"), self.bulk("c"), .integer(1)]))
                == .subscribed(.shard, "c")
        )
        #expect(
            try RedisPubSubPush(.array([self.bulk("sunsubscribe"), self.bulk("c"), .integer(0)]))
                == .unsubscribed(.shard, "c")
        )
        #expect(try RedisPubSubPush(.array([self.bulk("pong"), self.bulk("")])) == .pong)
        #expect(try RedisPubSubPush(.simpleString("PONG")) == .pong)
        // A cluster's refusal of SSUBSCRIBE for a slot it does not serve.
        #expect(
            try RedisPubSubPush(.error("MOVED 3999 127.0.0.1:6381"))
                == .redirected(RedisRedirection(kind: .moved, slot: 3999, host: "127.0.0.1", port: 6381))
        )
        #expect(
            try RedisPubSubPush(.error("ASK 12 :6382"))
                == .redirected(RedisRedirection(kind: .ask, slot: 12, host: "", port: 6382))
        )
    }

    @Test func refusesAnythingElse() {
        #expect(throws: RedisClientError.self) { try RedisPubSubPush(.integer(1)) }
        #expect(throws: RedisClientError.self) { try RedisPubSubPush(.array([self.bulk("message"), self.bulk("c")])) }
        #expect(throws: RedisClientError.self) { try RedisPubSubPush(.error("ERR nope")) }
    }
}
