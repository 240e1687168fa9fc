import NIOHTTP1
import Testing

@testable import Fanfare

@Suite struct PercentDecodingTests {
    @Test func escapesDecodeInEitherCase() {
        #expect(PercentDecoding.decode("a%20b") == "a b")
        #expect(PercentDecoding.decode("%41%6a%6A") == "Ajj")
        #expect(PercentDecoding.decode("caf%C3%A9") == "café")
        #expect(PercentDecoding.decode("plain") == "plain")
        #expect(PercentDecoding.decode("") == "")
    }

    @Test func plusIsASpaceOnlyInQueries() {
        #expect(PercentDecoding.decode("a+b") == "a+b")
        #expect(PercentDecoding.decode("a+b", plusIsSpace: true) == "a b")
        #expect(PercentDecoding.decode("a%2Bb", plusIsSpace: true) == "a+b")
    }

    @Test func malformedEscapesAndNonUTF8AreRefused() {
        for bad in ["%", "%4", "%zz", "%g0", "a%2", "%C3", "%FF", "%C3%28"] {
            #expect(PercentDecoding.decode(Substring(bad)) == nil, "\(bad)")
        }
    }

    @Test func requestsSplitPathAndQueryAndFlagBadTargets() {
        let good = HTTPRequest(
            head: HTTPRequestHead(
                version: .http1_1,
                method: .GET,
                uri: "/api/sse/subscribe/al%69ce?channels=a,b&userId=u+1&channels=ignored"
            )
        )
        #expect(good.segments == ["api", "sse", "subscribe", "alice"])
        #expect(good.query == ["channels": "a,b", "userId": "u 1"])
        #expect(!good.hasMalformedTarget)

        let badPath = HTTPRequest(head: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/api/%zz"))
        #expect(badPath.hasMalformedTarget)
        let badQuery = HTTPRequest(head: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/healthz?x=%FF"))
        #expect(badQuery.hasMalformedTarget)
        let flag = HTTPRequest(head: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/x?flag&y="))
        #expect(flag.query == ["flag": "", "y": ""])
    }
}
