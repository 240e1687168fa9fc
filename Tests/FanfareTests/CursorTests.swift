import NIOCore
import Testing

@testable import Fanfare

@Suite struct CursorTests {
    private let channels = ["client:alice", "user:42", "orders", "alerts", "billing.eu", "a", "b", "broadcast"]
    private var tags: [UInt32] { self.channels.map(Cursor.tag) }

    @Test func aCursorReadsBackAsItsPositionsByChannel() throws {
        let positions = [
            StreamPosition(milliseconds: 1_795_316_004_131, sequence: 0), .zero,
            StreamPosition(milliseconds: 1_795_316_009_000, sequence: 17),
            StreamPosition(milliseconds: 1_700_000_000_000, sequence: 2),
            .zero, StreamPosition(milliseconds: 1_795_316_004_131, sequence: 1), .zero,
            StreamPosition(milliseconds: 1_795_400_000_000, sequence: 123_456),
        ]
        let text = Cursor(positions: positions).text(tags: self.tags)
        let decoded = try #require(Cursor.decode(text))
        for (channel, position) in zip(self.channels, positions) {
            #expect(decoded[Cursor.tag(channel)] == position, "\(channel)")
        }
        #expect(decoded.count == self.channels.count)
    }

    @Test func eightChannelsStayWellUnderTwoHundredBytesAndUseOnlyURLSafeCharacters() {
        let now: UInt64 = 1_795_316_004_131
        let positions = (0..<8).map {
            StreamPosition(milliseconds: now + UInt64($0) * 86_400_000, sequence: UInt64($0))
        }
        let text = Cursor(positions: positions).text(tags: self.tags)
        #expect(text.utf8.count < 120, "\(text.utf8.count) bytes: \(text)")
        let alphabet = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        #expect(text.utf8.allSatisfy(alphabet.contains))
    }

    @Test func tagsAreFNV1aOfTheChannelName() {
        #expect(Cursor.tag("") == 0x811C_9DC5)
        #expect(Cursor.tag("a") == 0xE40C_292C)
        #expect(Cursor.tag("broadcast") != Cursor.tag("broadcasT"))
    }

    @Test func whatIsNotACursorIsNotReadAsOne() {
        let good = Cursor(positions: [StreamPosition(milliseconds: 5, sequence: 1)]).text(tags: [Cursor.tag("a")])
        for bad in [
            "", "1795316004131-0", "not-an-id", "!!!!", String(good.dropLast()), good + "A", "AgAAAAAA",
            String(repeating: "A", count: 5000),
        ] {
            #expect(Cursor.decode(bad) == nil, "\(bad)")
        }
        // Positions beyond what this cluster issues are refused too.
        var huge = ByteBuffer()
        Base64URL.encode([1, 0, 0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0], into: &huge)
        #expect(Cursor.decode(String(buffer: huge)) == nil)
    }

    @Test func base64URLRoundTripsEveryLength() throws {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<40 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            var buffer = ByteBuffer()
            Base64URL.encode(bytes, into: &buffer)
            #expect(Base64URL.decode(String(buffer: buffer)) == bytes)
        }
    }

    @Test func positionsParseStrictly() {
        #expect(StreamPosition("1795316004131-17") == StreamPosition(milliseconds: 1_795_316_004_131, sequence: 17))
        for bad in ["", "-", "1-", "-1", "1-2-3", " 1-2", "1-2 ", "a-1", "18446744073709551615-0", "281474976710656-0"]
        {
            #expect(StreamPosition(bad) == nil, "\(bad)")
        }
        #expect(StreamPosition("0-0") == .zero)
    }
}
