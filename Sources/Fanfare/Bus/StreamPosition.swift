/// A place in one channel's history: the id Redis gave the event there,
/// `<milliseconds>-<sequence>`, or ``zero`` before the channel's first event.
///
/// Positions of one channel increase strictly; positions of different channels are not
/// compared. Kept opaque outside the bus and the stream code.
struct StreamPosition: Comparable, Hashable, Sendable, CustomStringConvertible {
    var milliseconds: UInt64
    var sequence: UInt64

    /// Before any event.
    static let zero = StreamPosition(milliseconds: 0, sequence: 0)

    /// The largest milliseconds accepted from outside (the year 10889): larger values are
    /// not positions this cluster issued, and Redis refuses some of them in ranges.
    static let maximumMilliseconds: UInt64 = 1 << 48
    /// Sequences stay exact in Lua's numbers.
    static let maximumSequence: UInt64 = 1 << 53

    init(milliseconds: UInt64, sequence: UInt64) {
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    /// Parses `123-4` (digits only, within the bounds above); `nil` for anything else.
    init?(_ text: some StringProtocol) {
        let utf8 = text.utf8
        guard let dash = utf8.firstIndex(of: UInt8(ascii: "-")),
            let milliseconds = Self.number(utf8[utf8.startIndex..<dash], below: Self.maximumMilliseconds),
            let sequence = Self.number(utf8[utf8.index(after: dash)...], below: Self.maximumSequence)
        else { return nil }
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    private static func number(_ digits: some Collection<UInt8>, below limit: UInt64) -> UInt64? {
        guard !digits.isEmpty, digits.count <= 20 else { return nil }
        var value: UInt64 = 0
        for digit in digits {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
            let (times, overflow) = value.multipliedReportingOverflow(by: 10)
            guard !overflow else { return nil }
            value = times + UInt64(digit - UInt8(ascii: "0"))
            guard value < limit else { return nil }
        }
        return value
    }

    static func < (lhs: StreamPosition, rhs: StreamPosition) -> Bool {
        (lhs.milliseconds, lhs.sequence) < (rhs.milliseconds, rhs.sequence)
    }

    var description: String { "\(self.milliseconds)-\(self.sequence)" }
}
