import FanfareAPI
import NIOCore
import Testing

@testable import Fanfare

/// The API's JSON answers, as the README documents them, and the hand-written publish
/// answer against the Codable one.
@Suite struct AnswerTests {
    private func json(_ value: some Encodable) throws -> String {
        try APIJSON.string(value)
    }

    @Test func answersHaveTheirDocumentedShape() throws {
        #expect(
            try self.json(ErrorAnswer(error: "no such route", code: 404))
                == #"{"code":404,"error":"no such route","ok":false}"#
        )
        #expect(try self.json(HealthAnswer()) == #"{"ok":true}"#)
        #expect(
            try self.json(NotifyAnswer(id: "1795315894052-0", sent: true, connections: 2, clientId: "alice"))
                == #"{"clientId":"alice","connections":2,"id":"1795315894052-0","ok":true,"sent":true}"#
        )
        #expect(
            try self.json(NotifyAnswer(id: "1-0", sent: false, connections: 0))
                == #"{"connections":0,"id":"1-0","ok":true,"sent":false}"#
        )
        #expect(
            try self.json(
                ClientsAnswer(clients: [
                    .init(clientId: "alice", connections: 2), .init(clientId: "bob", connections: 1),
                ])
            )
                == #"{"clients":[{"clientId":"alice","connections":2},{"clientId":"bob","connections":1}],"totalClients":2}"#
        )
        #expect(
            try self.json(
                ClientAnswer(
                    clientId: "alice",
                    nodes: [.init(nodeId: "node-1", connections: 1), .init(nodeId: "node-2", connections: 1)]
                )
            )
                == #"{"clientId":"alice","connections":2,"nodes":[{"connections":1,"nodeId":"node-1"},{"connections":1,"nodeId":"node-2"}]}"#
        )
        let readiness = ReadinessAnswer(
            ready: true,
            node: "node-a1b2c3",
            mode: "embedded",
            draining: false,
            auth: "anonymous",
            access: .init(subscribe: "open", publish: "open", admin: "open")
        )
        #expect(
            try self.json(readiness)
                == #"{"access":{"admin":"open","publish":"open","subscribe":"open"},"auth":"anonymous","draining":false,"mode":"embedded","node":"node-a1b2c3","ready":true}"#
        )
        #expect(
            try self.json(
                ConnectedEvent(
                    clientId: "carol",
                    nodeId: "node-2",
                    channels: ["client:carol", "orders", "broadcast"],
                    time: 1795316010000
                )
            )
                == #"{"channels":["client:carol","orders","broadcast"],"clientId":"carol","nodeId":"node-2","time":1795316010000}"#
        )
    }

    @Test func clusterMetricsRoundTheAverageAndKeepEveryField() throws {
        let answer = ClusterMetricsAnswer(
            totalConnections: 4,
            totalClients: 3,
            averageConnectionsPerClient: 1.33,
            nodes: [
                NodeAnswer(
                    nodeId: "node-1",
                    address: "127.0.0.1:8081",
                    version: "0.1.0",
                    startedAt: 1795316000927,
                    uptimeSeconds: 3,
                    connections: 4,
                    clients: 3,
                    lastSeen: 1795316004162
                )
            ],
            thisNode: NodeCountersAnswer(
                nodeId: "node-1",
                eventsPublished: 2,
                publishFailures: 0,
                deliveries: 3,
                eventsReplayed: 0,
                resetsSent: 0,
                slowConsumerCloses: 0,
                redisReconnects: 0
            )
        )
        let text = try self.json(answer)
        #expect(
            text.hasPrefix(#"{"averageConnectionsPerClient":1.33,"nodes":[{"address":"127.0.0.1:8081","clients":3,"#)
        )
        #expect(text.hasSuffix(#""totalClients":3,"totalConnections":4}"#))
        #expect(try APIJSON.decode(ClusterMetricsAnswer.self, from: Array(text.utf8)) == answer)
        var empty = answer
        empty.averageConnectionsPerClient = 0
        #expect(try self.json(empty).hasPrefix(#"{"averageConnectionsPerClient":0,"#))
    }

    @Test func aResetNamesItsChannelsAndWhy() throws {
        #expect(
            try self.json(ResetEvent(channels: ["orders", "broadcast"], reason: .trimmed))
                == #"{"channels":["orders","broadcast"],"reason":"trimmed"}"#
        )
        let decoded = try APIJSON.decode(ResetEvent.self, from: Array(#"{"channels":["a"],"reason":"capped"}"#.utf8))
        #expect(decoded == ResetEvent(channels: ["a"], reason: .capped))
    }

    @Test func theHandWrittenPublishAnswerIsTheCodableOneByteForByte() throws {
        var generator = SystemRandomNumberGenerator()
        let alphabet: [Character] = [
            "a", "Z", "0", "-", ":", "\"", "\\", "/", "\n", "\r", "\t", "\u{0}", "\u{8}", "\u{C}", "\u{1F}", "\u{7F}",
            "é", "🎺", " ",
        ]
        func text() -> String {
            String(
                (0..<Int.random(in: 0...12, using: &generator)).map { _ in
                    alphabet.randomElement(using: &generator) ?? "a"
                }
            )
        }
        for _ in 0..<500 {
            let answer = NotifyAnswer(
                id: text(),
                sent: Bool.random(using: &generator),
                connections: Int.random(in: 0...1_000_000, using: &generator),
                clientId: Bool.random(using: &generator) ? text() : nil,
                duplicate: Bool.random(using: &generator) ? Bool.random(using: &generator) : nil
            )
            let fast = String(buffer: NotifyAnswerWriter.write(answer))
            #expect(fast == (try self.json(answer)), "\(answer)")
        }
    }
}
