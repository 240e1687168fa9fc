#if canImport(FoundationEssentials)
internal import FoundationEssentials
#else
internal import Foundation
#endif

/// The one JSON encoding of the HTTP API: keys sorted, slashes unescaped. The node writes
/// every answer with it and the CLI reads them with it.
public enum APIJSON {
    /// The JSON text of `value`.
    public static func encode<Value: Encodable>(_ value: Value) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }

    /// The JSON text of `value`, as a string.
    public static func string<Value: Encodable>(_ value: Value) throws -> String {
        String(decoding: try self.encode(value), as: UTF8.self)
    }

    /// Reads a `Value` from JSON text.
    public static func decode<Value: Decodable>(_ type: Value.Type, from bytes: some Collection<UInt8>) throws -> Value
    {
        try JSONDecoder().decode(type, from: Data(bytes))
    }
}
