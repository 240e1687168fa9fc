import NIOCore
import ServerSentEvents
import Testing

/// A small, fast, seeded generator so every failing case can be replayed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { self.state = seed }
    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct ServerSentEventRoundTripTests {
    /// Pieces text is built from: plain and multi-byte characters, every kind of line
    /// break, field-like text, colons, spaces and NUL.
    private static let pieces: [String] = [
        "a", "Z", "0", " ", "  ", ":", "data:", "id: 3", "event", "é", "ß", "中文", "🎉", "👩‍👩‍👧", "\u{0}", "\t",
        "\n", "\r", "\r\n", "\n\n", "\r\r", "{\"k\":[1,2]}", "\u{FEFF}", "retry: 9",
    ]
    private static let namePieces: [String] = ["a", "b", "-", "_", ".", " ", "é", "🎉", ":", "update", "42", "x y"]

    private func text(from pieces: [String], count: Int, using rng: inout SplitMix64) -> String {
        var text = ""
        for _ in 0..<count { text += pieces[Int(rng.next() % UInt64(pieces.count))] }
        return text
    }

    private func randomEvent(using rng: inout SplitMix64) -> ServerSentEvent {
        var event = ServerSentEvent()
        let roll = rng.next() % 100
        if roll < 2 {
            // A very long line.
            event.data = String(repeating: "long line é ", count: 500 + Int(rng.next() % 2_000))
        } else {
            event.data = self.text(from: Self.pieces, count: Int(rng.next() % 12), using: &rng)
        }
        if rng.next() % 3 == 0 { event.id = self.text(from: Self.namePieces, count: Int(rng.next() % 5), using: &rng) }
        if rng.next() % 3 == 0 {
            event.event = self.text(from: Self.namePieces, count: 1 + Int(rng.next() % 4), using: &rng)
        }
        if rng.next() % 10 == 0 {
            event.comment = self.text(from: Self.pieces, count: Int(rng.next() % 4), using: &rng)
        }
        if rng.next() % 10 == 0 { event.retry = Int(rng.next() % 100_000) }
        return event
    }

    /// What a conforming client sees for `events`: line breaks become LF, an empty
    /// event name means the default, and the last id carries over.
    private func expected(_ events: [ServerSentEvent]) -> (events: [ServerSentEvent], retry: Int?) {
        var lastID = ""
        var retry: Int? = nil
        var result: [ServerSentEvent] = []
        for event in events {
            if let id = event.id { lastID = id }
            if let value = event.retry { retry = value }
            guard let data = event.data else { continue }
            let normalized = data.withNormalizedLineEnds
            result.append(
                ServerSentEvent(
                    id: lastID.isEmpty ? nil : lastID,
                    event: (event.event ?? "").isEmpty ? nil : event.event,
                    data: normalized
                )
            )
        }
        return (result, retry)
    }

    @Test func randomEventsSurviveEncodingAndRandomChunking() throws {
        let cases = 10_000
        for seed in 0..<UInt64(cases) {
            var rng = SplitMix64(seed: seed)
            let events = (0..<(1 + Int(rng.next() % 5))).map { _ in self.randomEvent(using: &rng) }
            var stream = ByteBuffer()
            for event in events { try stream.writeServerSentEvent(event) }

            var parser = ServerSentEventParser()
            var parsed: [ServerSentEvent] = []
            var rest = stream
            while rest.readableBytes > 0 {
                let size = 1 + Int(rng.next() % UInt64(min(rest.readableBytes, rng.next() % 2 == 0 ? 7 : 4_096)))
                if let chunk = rest.readSlice(length: size) { parsed += parser.parse(chunk) }
            }
            let (expectedEvents, expectedRetry) = self.expected(events)
            #expect(parsed == expectedEvents, "seed \(seed)")
            #expect(parser.reconnectionTime == expectedRetry, "seed \(seed)")
            if parsed != expectedEvents { return }
        }
    }
}

extension String {
    /// The text with CRLF and lone CR turned into LF, as an SSE client sees data lines.
    fileprivate var withNormalizedLineEnds: String {
        var output = String.UnicodeScalarView()
        var previousWasCR = false
        for scalar in self.unicodeScalars {
            if scalar == "\r" {
                output.append("\n")
                previousWasCR = true
                continue
            }
            if scalar == "\n" && previousWasCR {
                previousWasCR = false
                continue
            }
            previousWasCR = false
            output.append(scalar)
        }
        return String(output)
    }
}
