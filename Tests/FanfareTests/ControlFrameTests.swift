import FanfareAPI
import NIOCore
import ServerSentEvents
import Testing

@testable import Fanfare

/// Every frame the node writes itself, read back by the SSE parser the way a browser would.
@Suite struct ControlFrameTests {
    private func parse(_ frame: ByteBuffer) -> (events: [ServerSentEvent], retry: Int?) {
        var parser = ServerSentEventParser()
        let events = parser.parse(frame)
        return (events, parser.reconnectionTime)
    }

    @Test func retryOnlySetsTheReconnectionTime() {
        let frame = ControlFrame.retry(milliseconds: 2000)
        #expect(String(buffer: frame) == "retry: 2000\n\n")
        let parsed = self.parse(frame)
        #expect(parsed.retry == 2000)
        #expect(parsed.events.isEmpty)
    }

    @Test func connectedCarriesTheStreamsChannels() throws {
        let connected = ConnectedEvent(
            clientId: "alice",
            nodeId: "node-1",
            channels: ["client:alice", "broadcast"],
            time: 5
        )
        let parsed = self.parse(ControlFrame.connected(connected, id: "AQAAAA"))
        let event = try #require(parsed.events.first)
        #expect(event.event == "__connected")
        #expect(event.id == "AQAAAA")
        #expect(try APIJSON.decode(ConnectedEvent.self, from: Array((event.data ?? "").utf8)) == connected)
    }

    @Test func resetHasOneShapeForEveryReason() throws {
        for reason in [ResetEvent.Reason.trimmed, .gone, .unknown, .capped] {
            let reset = ResetEvent(channels: ["orders"], reason: reason)
            let event = try #require(self.parse(ControlFrame.reset(reset, id: "AQ")).events.first)
            #expect(event.event == "__reset")
            #expect(event.id == "AQ")
            #expect(try APIJSON.decode(ResetEvent.self, from: Array((event.data ?? "").utf8)) == reset)
        }
    }

    @Test func heartbeatsAreACommentOrAnEvent() throws {
        #expect(String(buffer: ControlFrame.heartbeat(asEvent: false)) == ": heartbeat\n\n")
        #expect(self.parse(ControlFrame.heartbeat(asEvent: false)).events.isEmpty)
        let event = try #require(self.parse(ControlFrame.heartbeat(asEvent: true)).events.first)
        #expect(event.event == "heartbeat")
        #expect(event.data == "{}")
    }

    @Test func closingTellsTheClientWhenToComeBackAndWhy() {
        let draining = ControlFrame.close(.draining, retryMilliseconds: 750)
        #expect(String(buffer: draining) == ": draining\nretry: 750\n\n")
        #expect(self.parse(draining).retry == 750)
        #expect(
            String(buffer: ControlFrame.close(.unavailable, retryMilliseconds: 2000))
                == ": unavailable\nretry: 2000\n\n"
        )
    }
}
