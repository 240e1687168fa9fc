import Foundation
import Testing

/// One node and one resuming client on it, for the tests that make a failover lose an
/// event on purpose (Sentinel and Redis Cluster): publish to the broadcast channel, wait
/// for the client to have an event, publish through the failover, and check the outcome.
struct DivergenceProbe: Sendable {
    let node: NodeProcess
    let client: ResumingClient

    /// A client on `node`, once it is connected.
    init(node: NodeProcess, clientID: String) async throws {
        let client = ResumingClient(clientID: clientID, baseURL: node.url)
        try await withDeadline("the client to connect") {
            while client.nodes.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
        }
        self.node = node
        self.client = client
    }

    /// Publishes `event` to the broadcast channel: its id, or `nil` when it was refused.
    func publish(_ event: String) async throws -> String? {
        let response = try await TestHTTPClient.request(
            "POST",
            self.node.url + "/api/sse/notify",
            body: #"{"broadcast":true,"event":"\#(event)"}"#
        )
        guard response.status == 200 else { return nil }
        let json = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any]
        return json?["id"] as? String
    }

    /// Until the client has received the event `id`.
    func waitForEvent(_ id: String) async throws {
        let client = self.client
        try await withDeadline(seconds: 30, "the client to receive \(id)") {
            while !client.events.contains(where: { $0.id == id }) { try await Task.sleep(for: .milliseconds(20)) }
        }
    }

    /// Publishes until `count` events are accepted again after a failover, and waits for the
    /// client to have them: their ids.
    func publishAfterFailover(_ count: Int = 3) async throws -> [String] {
        let after = try await withDeadline(seconds: 40, "publishes to be accepted after the failover") {
            var after: [String] = []
            while after.count < count {
                if let id = try? await self.publish("after") {
                    after.append(id)
                } else {
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            return after
        }
        for id in after { try await self.waitForEvent(id) }
        return after
    }

    /// The promise after `lost` was lost with a failover (the new history, `history`, has
    /// `kept` and lacks `lost`): the client was told with `__reset`, no later event reuses
    /// the lost position or comes before it, and every later event arrived, in order.
    func expectLostEventReset(kept: String, lost: String, after: [String], history: [String]) throws {
        try #require(
            history.contains(kept) && !history.contains(lost),
            "the new history is not the diverged one: \(history)"
        )
        #expect(self.client.resets >= 1, "the stream was not told that \(lost) is gone")
        #expect(!after.contains(lost))
        #expect(after.allSatisfy { TestCursor.order(lost).lexicographicallyPrecedes(TestCursor.order($0)) })
        let received = self.client.events.map(\.id)
        #expect(received.filter { after.contains($0) } == after, "\(received)")
        #expect(received.filter { $0 == lost }.count == 1)
    }
}
