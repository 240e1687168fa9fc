import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `--log-format json`: one JSON object per line on standard error, for log collectors.
///
/// `{"time":"2026-12-07T14:03:11.482Z","level":"info","logger":"fanfare","message":"fanfare.started","address":"…"}`:
/// the time in UTC with milliseconds, the level, the logger's label, the message, then the
/// metadata (the logger's, then the call's) as fields of their own; a field named like one
/// of the first four gets a `metadata.` prefix. Each line goes out in one `write(2)`.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    init(label: String) {
        self.label = label
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = self.metadata.merging(event.metadata ?? [:]) { _, call in call }
        if let error = event.error { merged["error"] = "\(error)" }
        var text = Self.line(
            time: Date(),
            level: event.level,
            label: self.label,
            message: event.message.description,
            metadata: merged
        )
        text.withUTF8 { bytes in
            guard let base = bytes.baseAddress else { return }
            var offset = 0
            while offset < bytes.count {
                let written = write(2, base + offset, bytes.count - offset)
                if written <= 0 { break }
                offset += written
            }
        }
    }

    private static let reserved: Set<String> = ["time", "level", "logger", "message"]

    /// One log line, newline included.
    static func line(
        time: Date,
        level: Logger.Level,
        label: String,
        message: String,
        metadata: Logger.Metadata
    ) -> String {
        var fields = [
            ("time", Self.json(Self.timestamp(time))), ("level", Self.json(level.rawValue)),
            ("logger", Self.json(label)), ("message", Self.json(message)),
        ]
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            fields.append((Self.reserved.contains(key) ? "metadata.\(key)" : key, Self.json(value)))
        }
        return "{" + fields.map { "\(Self.json($0.0)):\($0.1)" }.joined(separator: ",") + "}\n"
    }

    private static func json(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let string): Self.json(string)
        case .stringConvertible(let convertible): Self.json(convertible.description)
        case .array(let values): "[" + values.map(Self.json).joined(separator: ",") + "]"
        case .dictionary(let dictionary):
            "{"
                + dictionary.sorted { $0.key < $1.key }.map { "\(Self.json($0.key)):\(Self.json($0.value))" }
                .joined(separator: ",") + "}"
        }
    }

    /// A JSON string: quotes, backslashes and control characters escaped.
    static func json(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    private static func timestamp(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1_000).rounded(.down))
        var seconds = time_t(milliseconds / 1_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let fraction = Int(milliseconds % 1_000)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let millis = fraction < 10 ? "00\(fraction)" : fraction < 100 ? "0\(fraction)" : "\(fraction)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(millis)Z"
    }
}
