import Foundation
import Logging
import Testing

@testable import FanfareCLI

/// One log line as JSON: the first four fields in order, control characters escaped, and
/// a metadata field named like one of them kept under a prefix.
@Suite struct JSONLogHandlerTests {
    @Test func aLineIsOneJSONObjectWithItsMetadataAsFields() throws {
        let line = JSONLogHandler.line(
            time: Date(timeIntervalSince1970: 1_796_625_941.5),
            level: .warning,
            label: "fanfare",
            message: "tab\there \"quoted\" \u{1}",
            metadata: ["message": "clash", "node.id": "n1", "list": .array(["a", "b"])]
        )
        #expect(line.hasPrefix(#"{"time":"2026-12-07T"#))
        #expect(line.hasSuffix("}\n"))
        #expect(line.contains(#""level":"warning","logger":"fanfare","message":"tab\there \"quoted\" \u0001""#))
        let object = try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["message"] as? String == "tab\there \"quoted\" \u{1}")
        #expect(object["metadata.message"] as? String == "clash")
        #expect(object["node.id"] as? String == "n1")
        #expect(object["list"] as? [String] == ["a", "b"])
        #expect((object["time"] as? String)?.hasSuffix(".500Z") == true)
    }
}
