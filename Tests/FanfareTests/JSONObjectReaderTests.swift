import Foundation
import Testing

@testable import Fanfare

struct JSONObjectReaderTests {
    private func fields(_ text: String) -> [JSONObjectReader.Field]? {
        JSONObjectReader.fields(of: Array(text.utf8))
    }

    @Test func readsTopLevelFieldsDecodesStringsAndKeepsValueSpans() throws {
        let text =
            #" { "event" : "a\"b\\c\/d\u00e9\ud83d\ude00\n" , "n":-12.5e+3, "ok":true, "no":false, "x":null, "#
            + #""payload" : { "k" : [ 1 , "two" , { } , [ ] ] } } "#
        let fields = try #require(self.fields(text))
        #expect(fields.map(\.key) == ["event", "n", "ok", "no", "x", "payload"])
        #expect(fields[0].string == "a\"b\\c/d\u{e9}\u{1F600}\n")
        #expect(fields.map(\.kind) == [.string, .number, .bool(true), .bool(false), .null, .object])
        #expect(fields[1].string == nil)
        let bytes = Array(text.utf8)
        #expect(JSONObjectReader.compact(bytes, fields[5].span) == #"{"k":[1,"two",{},[]]}"#)
        #expect(JSONObjectReader.compact(bytes, fields[0].span) == #""a\"b\\c\/d\u00e9\ud83d\ude00\n""#)
        #expect(self.fields("{}")?.isEmpty == true)
    }

    @Test(arguments: [
        "", " ", "[1,2]", "\"text\"", "1", "null", "not json", "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}",
        "{,}", "{\"a\":1 \"b\":2}", "{\"a\":1}x", "{\"a\":1}{}", "{a:1}", "{'a':1}", "{\"a\":01}", "{\"a\":1.}",
        "{\"a\":.5}", "{\"a\":1e}", "{\"a\":+1}", "{\"a\":-}", "{\"a\":tru}", "{\"a\":True}", "{\"a\":nul}",
        "{\"a\":\"\u{01}\"}", "{\"a\":\"tab\there\"}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\\ud800\"}",
        "{\"a\":\"\\udc00\"}", "{\"a\":\"\\ud800\\u0041\"}", "{\"a\":\"open}", "{\"a\":[1,2}", "{\"a\":{\"b\":1]}",
        "{\"a\":[,1]}", "{\"a\":NaN}", "{\"a\":Infinity}",
    ])
    func refusesWhatIsNotExactlyOneJSONObject(_ text: String) {
        #expect(self.fields(text) == nil)
    }

    @Test func readsTheElementsOfAnArrayAsSpans() throws {
        let text = #" [ {"a": 1} , [2, 3], "four" ,5,null ] "#
        let bytes = Array(text.utf8)
        let elements = try #require(JSONObjectReader.elements(of: bytes))
        #expect(
            elements.map { JSONObjectReader.compact(bytes, $0) } == [#"{"a":1}"#, "[2,3]", #""four""#, "5", "null"]
        )
        #expect(JSONObjectReader.elements(of: Array("[]".utf8))?.isEmpty == true)
        #expect(JSONObjectReader.isArray(Array(" \n[".utf8)) && !JSONObjectReader.isArray(Array(" {}".utf8)))
        for bad in ["", "[", "[1,]", "[,1]", "[1 2]", "[1]x", "{}", "[{\"a\":}]", "[\"\u{01}\"]"] {
            #expect(JSONObjectReader.elements(of: Array(bad.utf8)) == nil, "\(bad)")
        }
    }

    @Test func aBatchIsCheckedItemByItemAndRefusedWholeNamingTheFirstBadItem() throws {
        let good = #"{"channel":"orders","event":"created","payload":{"id": 7}}"#
        let targets = try NotifyTarget.batch(body: Array("[\(good), {\"clientId\":\"ann\"}]".utf8))
        #expect(targets.map(\.request.channel) == ["orders", "client:ann"])
        #expect(targets.map(\.request.data) == [#"{"id":7}"#, "null"])
        #expect(targets[1].clientID == "ann")
        for (body, says) in [
            ("[\(good), {\"broadcast\":true,\"event\":\"__x\"}]", "item 1: event names starting with __"),
            ("[\(good), 5]", "item 1: the body must be a JSON object"), ("[]", "the batch is empty"),
            (
                "[" + Array(repeating: good, count: NotifyTarget.batchLimit + 1).joined(separator: ",") + "]",
                "at most 1000"
            ),
            ("[\(good)", "a JSON object, or an array of them"),
        ] {
            #expect(throws: FanfareError.self) { try NotifyTarget.batch(body: Array(body.utf8)) }
            do {
                _ = try NotifyTarget.batch(body: Array(body.utf8))
            } catch let error as FanfareError {
                #expect(error.code == .invalidInput)
                #expect(error.message.contains(says), "\(error.message)")
            }
        }
    }

    @Test func refusesInvalidUTF8AndTooDeepNesting() {
        #expect(JSONObjectReader.fields(of: Array("{\"a\":\"".utf8) + [0xC3, 0x28] + Array("\"}".utf8)) == nil)
        #expect(JSONObjectReader.fields(of: Array("{\"a\":\"".utf8) + [0xFF] + Array("\"}".utf8)) == nil)
        let deep = "{\"a\":" + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + "}"
        #expect(self.fields(deep) == nil)
        let fine = "{\"a\":" + String(repeating: "[", count: 60) + String(repeating: "]", count: 60) + "}"
        #expect(self.fields(fine) != nil)
    }

    /// Random documents, written with random whitespace: every one is read back with its
    /// compact payload, what Foundation makes of it agrees, and no proper prefix is taken.
    @Test func randomDocumentsRoundTripAndTheirPrefixesAreRefused() throws {
        var random = SplitMix(seed: 0x5EED)
        for _ in 0..<500 {
            var spaced = ""
            var compact = ""
            Self.document(&random, spaced: &spaced, compact: &compact)
            let bytes = Array(spaced.utf8)
            let fields = try #require(JSONObjectReader.fields(of: bytes), "\(spaced)")
            let payload = try #require(fields.first { $0.key == "payload" })
            #expect(JSONObjectReader.compact(bytes, payload.span) == compact)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
            #expect(object["event"] as? String == fields.first { $0.key == "event" }?.string)
            let trimmed = spaced.utf8.count - spaced.reversed().prefix { $0 == " " || $0 == "\n" || $0 == "\t" }.count
            for length in stride(from: 0, to: trimmed, by: max(1, trimmed / 25)) {
                #expect(JSONObjectReader.fields(of: Array(bytes[0..<length])) == nil)
            }
        }
    }

    private static func document(_ random: inout SplitMix, spaced: inout String, compact: inout String) {
        let event = Self.randomString(&random)
        var payloadCompact = ""
        var payloadSpaced = ""
        Self.value(&random, depth: 0, spaced: &payloadSpaced, compact: &payloadCompact)
        let gap = { (random: inout SplitMix) in [" ", "", "\n", "\t", "  "][Int(random.next() % 5)] }
        spaced = "{" + gap(&random) + #""event""# + gap(&random) + ":" + gap(&random) + Self.encode(event)
        spaced += gap(&random) + "," + gap(&random) + #""payload""# + ":" + gap(&random) + payloadSpaced
        spaced += gap(&random) + "}" + gap(&random)
        compact = payloadCompact
    }

    private static func value(_ random: inout SplitMix, depth: Int, spaced: inout String, compact: inout String) {
        let pick = depth > 3 ? random.next() % 4 : random.next() % 6
        let space = [" ", "", "\n "][Int(random.next() % 3)]
        switch pick {
        case 0:
            let text = ["0", "-1", "12.5", "1e9", "-0.25E-3", "123456789012"][Int(random.next() % 6)]
            (spaced, compact) = (spaced + text, compact + text)
        case 1:
            let text = Self.encode(Self.randomString(&random))
            (spaced, compact) = (spaced + text, compact + text)
        case 2:
            let text = ["true", "false", "null"][Int(random.next() % 3)]
            (spaced, compact) = (spaced + text, compact + text)
        case 3:
            (spaced, compact) = (spaced + "[" + space, compact + "[")
            for index in 0..<Int(random.next() % 4) {
                if index > 0 { (spaced, compact) = (spaced + space + "," + space, compact + ",") }
                Self.value(&random, depth: depth + 1, spaced: &spaced, compact: &compact)
            }
            (spaced, compact) = (spaced + space + "]", compact + "]")
        default:
            (spaced, compact) = (spaced + "{" + space, compact + "{")
            for index in 0..<Int(random.next() % 4) {
                if index > 0 { (spaced, compact) = (spaced + "," + space, compact + ",") }
                let key = Self.encode("k\(index)" + Self.randomString(&random))
                (spaced, compact) = (spaced + key + space + ":" + space, compact + key + ":")
                Self.value(&random, depth: depth + 1, spaced: &spaced, compact: &compact)
            }
            (spaced, compact) = (spaced + space + "}", compact + "}")
        }
    }

    private static func randomString(_ random: inout SplitMix) -> String {
        let pieces = ["a", " ", "é", "😀", "\"", "\\", "\n", "\u{1}", "/", "{", "]", ",", ":", "\u{2028}"]
        return (0..<Int(random.next() % 6)).map { _ in pieces[Int(random.next() % UInt64(pieces.count))] }.joined()
    }

    /// A JSON string literal, with escapes written in several ways.
    private static func encode(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "/": out += "\\/"
            case "😀": out += "\\ud83d\\ude00"
            case "\u{0}"..."\u{1F}": out += String(format: "\\u%04X", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
