internal import NIOCore

/// A stream's place in each of its channels, and the SSE `id:` it writes with every event:
/// for each channel, the position of the last event the stream delivered there (or of the
/// channel's newest event when the stream began). A client that comes back with it, to any
/// node, resumes every channel exactly where it left off.
///
/// Format, version 1: the bytes below in base64url without padding.
///
///     0x01                       version
///     varint base                the smallest millisecond part of the positions (0 if none)
///     per channel, in the stream's channel order:
///       4 bytes tag              FNV-1a (32 bit) of the channel name, big-endian
///       varint delta             0 for "before the channel's first event", else ms - base + 1
///       varint sequence          only when delta is not 0
///
/// Tags, not the order, tie a position to its channel, so a client that comes back with
/// other channels keeps the positions of those it still has. A stream of eight channels
/// writes ids of about 95 characters.
struct Cursor: Equatable, Sendable {
    /// The positions, one per channel of the stream, in its channel order.
    var positions: [StreamPosition]

    static let version: UInt8 = 1

    init(positions: [StreamPosition]) {
        self.positions = positions
    }

    /// The tag of a channel name.
    static func tag(_ channel: String) -> UInt32 {
        var hash: UInt32 = 0x811C_9DC5
        for byte in channel.utf8 {
            hash ^= UInt32(byte)
            hash = hash &* 0x0100_0193
        }
        return hash
    }

    /// Writes the cursor as an SSE id (`tags` are the stream's channels' tags, in order).
    func write(tags: [UInt32], into buffer: inout ByteBuffer) {
        let positions = self.positions
        Self.write(count: positions.count, into: &buffer) { (tags[$0], positions[$0]) }
    }

    /// Writes the cursor of `count` channels, the tag and position of channel `i` given by
    /// `channel(i)`, as an SSE id; with `line`, as the whole `id:` line.
    @inline(__always)
    static func write(
        count: Int,
        into buffer: inout ByteBuffer,
        line: Bool = false,
        channel: (Int) -> (tag: UInt32, position: StreamPosition)
    ) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: Self.maximumLength(channels: count, line: line)) {
            out in
            Self.write(count: count, to: out.baseAddress.unsafelyUnwrapped, line: line, channel: channel)
        }
    }

    /// The most bytes ``write(count:to:line:channel:)`` writes for `channels` channels.
    @inline(__always)
    static func maximumLength(channels: Int, line: Bool) -> Int {
        // A version byte, the base, and per channel a tag and two varints of 10 at most.
        (11 + channels * 24 + 2) / 3 * 4 + (line ? 5 : 0)
    }

    /// The delivery path's encoder: writes at `out` (room for ``maximumLength(channels:line:)``)
    /// and returns how many bytes it wrote. No allocation: the binary form is built on the
    /// stack in one pass after finding the base, then base64url goes straight to `out`.
    @inline(__always)
    static func write(
        count: Int,
        to out: UnsafeMutableRawPointer,
        line: Bool,
        channel: (Int) -> (tag: UInt32, position: StreamPosition)
    ) -> Int {
        var base = UInt64.max
        for index in 0..<count {
            let position = channel(index).position
            if position != .zero, position.milliseconds < base { base = position.milliseconds }
        }
        if base == .max { base = 0 }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 11 + count * 24) { bytes in
            var length = 0
            bytes[length] = Self.version
            length += 1
            Self.appendVarint(base, to: bytes, at: &length)
            for index in 0..<count {
                let (tag, position) = channel(index)
                bytes[length] = UInt8(truncatingIfNeeded: tag >> 24)
                bytes[length + 1] = UInt8(truncatingIfNeeded: tag >> 16)
                bytes[length + 2] = UInt8(truncatingIfNeeded: tag >> 8)
                bytes[length + 3] = UInt8(truncatingIfNeeded: tag)
                length += 4
                if position == .zero {
                    bytes[length] = 0
                    length += 1
                } else {
                    Self.appendVarint(position.milliseconds - base + 1, to: bytes, at: &length)
                    Self.appendVarint(position.sequence, to: bytes, at: &length)
                }
            }
            return Base64URL.encode(UnsafeBufferPointer(rebasing: bytes[0..<length]), to: out, line: line)
        }
    }

    @inline(__always)
    private static func appendVarint(_ value: UInt64, to bytes: UnsafeMutableBufferPointer<UInt8>, at length: inout Int)
    {
        var value = value
        while value >= 0x80 {
            bytes[length] = UInt8(truncatingIfNeeded: value) | 0x80
            length += 1
            value >>= 7
        }
        bytes[length] = UInt8(value)
        length += 1
    }

    /// The cursor as a string (tests, logs).
    func text(tags: [UInt32]) -> String {
        var buffer = ByteBuffer()
        self.write(tags: tags, into: &buffer)
        return String(buffer: buffer)
    }

    /// The positions in a version-1 id, by channel tag; `nil` when `text` is not one (a
    /// damaged id, another version, or an id of the earlier `<ms>-<seq>` kind).
    static func decode(_ text: String) -> [UInt32: StreamPosition]? {
        guard let bytes = Base64URL.decode(text), bytes.first == Self.version else { return nil }
        var reader = VarintReader(bytes: bytes, index: 1)
        guard let base = reader.varint(), base < StreamPosition.maximumMilliseconds else { return nil }
        var positions: [UInt32: StreamPosition] = [:]
        while !reader.isAtEnd {
            guard let tag = reader.uint32(), let delta = reader.varint() else { return nil }
            if delta == 0 {
                positions[tag] = .zero
                continue
            }
            guard let sequence = reader.varint(), sequence < StreamPosition.maximumSequence else { return nil }
            let (milliseconds, overflow) = base.addingReportingOverflow(delta - 1)
            guard !overflow, milliseconds < StreamPosition.maximumMilliseconds else { return nil }
            positions[tag] = StreamPosition(milliseconds: milliseconds, sequence: sequence)
        }
        return positions
    }

    private struct VarintReader {
        let bytes: [UInt8]
        var index: Int

        var isAtEnd: Bool { self.index >= self.bytes.count }

        mutating func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while self.index < self.bytes.count, shift < 64 {
                let byte = self.bytes[self.index]
                self.index += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
            return nil
        }

        mutating func uint32() -> UInt32? {
            guard self.index + 4 <= self.bytes.count else { return nil }
            defer { self.index += 4 }
            return self.bytes[self.index..<(self.index + 4)].reduce(0) { $0 << 8 | UInt32($1) }
        }
    }
}

/// base64url without padding (RFC 4648 §5): only `A-Z a-z 0-9 - _`, safe in an SSE id, a
/// header and a query parameter.
enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    static func encode(_ bytes: [UInt8], into buffer: inout ByteBuffer) {
        bytes.withUnsafeBufferPointer { Self.encode($0, into: &buffer) }
    }

    /// Encodes into `buffer`; with `line`, as a whole SSE line: `id: `, the text, a newline.
    static func encode(_ bytes: UnsafeBufferPointer<UInt8>, into buffer: inout ByteBuffer, line: Bool = false) {
        let length = (bytes.count + 2) / 3 * 4 + (line ? 5 : 0)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { out in
            Self.encode(bytes, to: out.baseAddress.unsafelyUnwrapped, line: line)
        }
    }

    /// Encodes at `out` (room for `(count + 2) / 3 * 4` bytes, 5 more with `line`), four
    /// characters per three bytes; returns how many bytes it wrote.
    @inline(__always)
    static func encode(_ bytes: UnsafeBufferPointer<UInt8>, to out: UnsafeMutableRawPointer, line: Bool) -> Int {
        let out = out.assumingMemoryBound(to: UInt8.self)
        return Self.alphabet.withUnsafeBufferPointer { alphabet in
            var read = 0
            var written = 0
            if line {
                out[0] = UInt8(ascii: "i")
                out[1] = UInt8(ascii: "d")
                out[2] = UInt8(ascii: ":")
                out[3] = UInt8(ascii: " ")
                written = 4
            }
            while read + 3 <= bytes.count {
                let chunk = UInt32(bytes[read]) << 16 | UInt32(bytes[read + 1]) << 8 | UInt32(bytes[read + 2])
                out[written] = alphabet[Int(chunk >> 18 & 63)]
                out[written + 1] = alphabet[Int(chunk >> 12 & 63)]
                out[written + 2] = alphabet[Int(chunk >> 6 & 63)]
                out[written + 3] = alphabet[Int(chunk & 63)]
                read += 3
                written += 4
            }
            switch bytes.count - read {
            case 1:
                let chunk = UInt32(bytes[read]) << 16
                out[written] = alphabet[Int(chunk >> 18 & 63)]
                out[written + 1] = alphabet[Int(chunk >> 12 & 63)]
                written += 2
            case 2:
                let chunk = UInt32(bytes[read]) << 16 | UInt32(bytes[read + 1]) << 8
                out[written] = alphabet[Int(chunk >> 18 & 63)]
                out[written + 1] = alphabet[Int(chunk >> 12 & 63)]
                out[written + 2] = alphabet[Int(chunk >> 6 & 63)]
                written += 3
            default:
                break
            }
            if line {
                out[written] = UInt8(ascii: "\n")
                written += 1
            }
            return written
        }
    }

    /// `nil` for anything that is not unpadded base64url (or is longer than 4 KiB).
    static func decode(_ text: String) -> [UInt8]? {
        let utf8 = text.utf8
        guard utf8.count <= 4096, utf8.count % 4 != 1 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count * 3 / 4)
        var chunk: UInt32 = 0
        var bits = 0
        for character in utf8 {
            guard let value = Self.value(character) else { return nil }
            chunk = chunk << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                bytes.append(UInt8(truncatingIfNeeded: chunk >> UInt32(bits)))
            }
        }
        // The bits left over must be zero, or the text is not a canonical encoding.
        guard chunk & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return bytes
    }

    private static func value(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): character - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): character - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0") + 52
        case UInt8(ascii: "-"): 62
        case UInt8(ascii: "_"): 63
        default: nil
        }
    }
}
