/// Reads the top level of a JSON object (RFC 8259, strictly) without building a tree.
///
/// A publish body is one small object whose fields are mostly strings, plus a payload that
/// is passed on as JSON text. Foundation's `JSONSerialization` parsed all of it into
/// bridged objects and wrote the payload out again, which cost more than everything else
/// a publish does. Here the whole body is validated in one pass; top-level strings are
/// decoded, and every field keeps the byte range of its value so the payload can be passed
/// on as written, only stripped of whitespace.
struct JSONObjectReader {
    enum Kind: Equatable {
        case object, array, string, number, null
        case bool(Bool)
    }

    struct Field {
        var key: String
        var kind: Kind
        /// The value's bytes in the body.
        var span: Range<Int>
        /// The decoded value, for strings.
        var string: String?
    }

    private let bytes: [UInt8]
    private var index = 0
    /// Where the text being read ends (the end of `bytes`, or of one element of an array).
    private let end: Int
    private let maximumDepth: Int

    /// The fields of the object in `bytes`, in order; `nil` when `bytes` is not exactly one
    /// JSON object (with optional surrounding whitespace) or nests deeper than
    /// `maximumDepth`.
    static func fields(of bytes: [UInt8], maximumDepth: Int = 64) -> [Field]? {
        var reader = JSONObjectReader(bytes: bytes, maximumDepth: maximumDepth)
        return reader.topLevel(validate: true)
    }

    /// The fields of the object at `span` of `bytes` (an element ``elements(of:maximumDepth:)``
    /// found, so already valid UTF-8): the same as ``fields(of:maximumDepth:)`` of those
    /// bytes alone, with spans into `bytes`, and no copy.
    static func fields(of bytes: [UInt8], in span: Range<Int>, maximumDepth: Int = 64) -> [Field]? {
        var reader = JSONObjectReader(bytes: bytes, range: span, maximumDepth: maximumDepth)
        return reader.topLevel(validate: false)
    }

    /// The byte ranges of the elements of the array in `bytes`, in order; `nil` when
    /// `bytes` is not exactly one valid JSON array (with optional surrounding whitespace)
    /// or nests deeper than `maximumDepth`.
    static func elements(of bytes: [UInt8], maximumDepth: Int = 64) -> [Range<Int>]? {
        var reader = JSONObjectReader(bytes: bytes, maximumDepth: maximumDepth)
        return reader.topLevelArray()
    }

    /// Whether the first byte that is not whitespace opens an array.
    static func isArray(_ bytes: [UInt8]) -> Bool {
        bytes.first { !Self.isWhitespace($0) } == UInt8(ascii: "[")
    }

    /// The JSON text of `span` without the whitespace between tokens (strings unchanged).
    static func compact(_ bytes: [UInt8], _ span: Range<Int>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(span.count)
        var inString = false
        var escaped = false
        for byte in bytes[span] {
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                out.append(byte)
            } else if !Self.isWhitespace(byte) {
                if byte == UInt8(ascii: "\"") { inString = true }
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private init(bytes: [UInt8], range: Range<Int>? = nil, maximumDepth: Int) {
        self.bytes = bytes
        self.index = range?.lowerBound ?? 0
        self.end = range?.upperBound ?? bytes.count
        self.maximumDepth = maximumDepth
    }

    private mutating func topLevel(validate: Bool) -> [Field]? {
        // JSON text is UTF-8: refuse anything else before looking at it.
        // (A check in place: no copy of the body is made for it.)
        if validate, (try? UTF8Span(validating: self.bytes.span)) == nil { return nil }
        self.skipWhitespace()
        guard self.take(UInt8(ascii: "{")) else { return nil }
        var fields: [Field] = []
        self.skipWhitespace()
        if !self.take(UInt8(ascii: "}")) {
            repeat {
                self.skipWhitespace()
                guard self.peek == UInt8(ascii: "\""), let key = self.string(decode: true) else { return nil }
                self.skipWhitespace()
                guard self.take(UInt8(ascii: ":")) else { return nil }
                self.skipWhitespace()
                let start = self.index
                var decoded: String?
                let kind: Kind
                if self.peek == UInt8(ascii: "\"") {
                    guard let text = self.string(decode: true) else { return nil }
                    (kind, decoded) = (.string, text)
                } else {
                    guard let other = self.value(depth: 1) else { return nil }
                    kind = other
                }
                fields.append(Field(key: key, kind: kind, span: start..<self.index, string: decoded))
                self.skipWhitespace()
            } while self.take(UInt8(ascii: ","))
            guard self.take(UInt8(ascii: "}")) else { return nil }
        }
        self.skipWhitespace()
        return self.index == self.end ? fields : nil
    }

    private mutating func topLevelArray() -> [Range<Int>]? {
        guard (try? UTF8Span(validating: self.bytes.span)) != nil else { return nil }
        self.skipWhitespace()
        guard self.take(UInt8(ascii: "[")) else { return nil }
        var elements: [Range<Int>] = []
        self.skipWhitespace()
        if !self.take(UInt8(ascii: "]")) {
            repeat {
                self.skipWhitespace()
                let start = self.index
                guard self.value(depth: 2) != nil else { return nil }
                elements.append(start..<self.index)
                self.skipWhitespace()
            } while self.take(UInt8(ascii: ","))
            guard self.take(UInt8(ascii: "]")) else { return nil }
        }
        self.skipWhitespace()
        return self.index == self.end ? elements : nil
    }

    private mutating func value(depth: Int) -> Kind? {
        guard depth <= self.maximumDepth, let byte = self.peek else { return nil }
        switch byte {
        case UInt8(ascii: "{"):
            return self.container(close: UInt8(ascii: "}"), keyed: true, depth: depth) ? .object : nil
        case UInt8(ascii: "["):
            return self.container(close: UInt8(ascii: "]"), keyed: false, depth: depth) ? .array : nil
        case UInt8(ascii: "\""):
            return self.string(decode: false) != nil ? .string : nil
        case UInt8(ascii: "t"):
            return self.literal("true") ? .bool(true) : nil
        case UInt8(ascii: "f"):
            return self.literal("false") ? .bool(false) : nil
        case UInt8(ascii: "n"):
            return self.literal("null") ? .null : nil
        default:
            return self.number() ? .number : nil
        }
    }

    /// An object or array after its opening bracket (which `peek` is on).
    private mutating func container(close: UInt8, keyed: Bool, depth: Int) -> Bool {
        self.index += 1
        self.skipWhitespace()
        if self.take(close) { return true }
        repeat {
            self.skipWhitespace()
            if keyed {
                guard self.peek == UInt8(ascii: "\""), self.string(decode: false) != nil else { return false }
                self.skipWhitespace()
                guard self.take(UInt8(ascii: ":")) else { return false }
                self.skipWhitespace()
            }
            guard self.value(depth: depth + 1) != nil else { return false }
            self.skipWhitespace()
        } while self.take(UInt8(ascii: ","))
        return self.take(close)
    }

    /// A string (`peek` is on its quote). Decoded only when asked; validated always:
    /// no raw control characters, only the defined escapes, surrogates in pairs.
    private mutating func string(decode: Bool) -> String? {
        self.index += 1
        let start = self.index
        var decoded: [UInt8]?
        while let byte = self.peek {
            switch byte {
            case UInt8(ascii: "\""):
                let end = self.index
                self.index += 1
                guard decode else { return "" }
                if let decoded { return String(decoding: decoded, as: UTF8.self) }
                return String(decoding: self.bytes[start..<end], as: UTF8.self)
            case UInt8(ascii: "\\"):
                if decode && decoded == nil { decoded = Array(self.bytes[start..<self.index]) }
                self.index += 1
                guard let scalar = self.escape() else { return nil }
                if decode { decoded?.append(contentsOf: String(Character(scalar)).utf8) }
            case 0..<0x20:
                return nil
            default:
                decoded?.append(byte)
                self.index += 1
            }
        }
        return nil
    }

    /// The character of an escape after its backslash.
    private mutating func escape() -> Unicode.Scalar? {
        guard let byte = self.peek else { return nil }
        self.index += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): return Unicode.Scalar(byte)
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            guard let unit = self.hex4() else { return nil }
            switch unit {
            case 0xD800..<0xDC00:
                guard self.take(UInt8(ascii: "\\")), self.take(UInt8(ascii: "u")), let low = self.hex4(),
                    (0xDC00..<0xE000).contains(low)
                else { return nil }
                return Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
            case 0xDC00..<0xE000:
                return nil  // a low surrogate alone
            default:
                return Unicode.Scalar(unit)
            }
        default:
            return nil
        }
    }

    private mutating func hex4() -> UInt32? {
        guard self.index + 4 <= self.end else { return nil }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = self.bytes[self.index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt32(digit)
            self.index += 1
        }
        return value
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    private mutating func number() -> Bool {
        _ = self.take(UInt8(ascii: "-"))
        if self.take(UInt8(ascii: "0")) {
            // no leading zeros
        } else if let byte = self.peek, (UInt8(ascii: "1")...UInt8(ascii: "9")).contains(byte) {
            self.digits()
        } else {
            return false
        }
        if self.take(UInt8(ascii: ".")) {
            guard self.digits() else { return false }
        }
        if self.take(UInt8(ascii: "e")) || self.take(UInt8(ascii: "E")) {
            if !self.take(UInt8(ascii: "+")) { _ = self.take(UInt8(ascii: "-")) }
            guard self.digits() else { return false }
        }
        return true
    }

    /// Skips digits; whether there was at least one.
    @discardableResult
    private mutating func digits() -> Bool {
        let start = self.index
        while let byte = self.peek, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { self.index += 1 }
        return self.index > start
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard self.index + count <= self.end else { return false }
        for offset in 0..<count where self.bytes[self.index + offset] != word.utf8Start[offset] { return false }
        self.index += count
        return true
    }

    private var peek: UInt8? { self.index < self.end ? self.bytes[self.index] : nil }

    private mutating func take(_ byte: UInt8) -> Bool {
        guard self.peek == byte else { return false }
        self.index += 1
        return true
    }

    private mutating func skipWhitespace() {
        while let byte = self.peek, Self.isWhitespace(byte) { self.index += 1 }
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }
}
