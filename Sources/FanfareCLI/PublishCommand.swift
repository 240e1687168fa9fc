import ArgumentParser
import Fanfare
import Foundation
import HiredisNIO
import Logging
import NIOPosix

struct PublishCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Publish an event through a node (HTTP) or straight through Redis."
    )

    @Option(help: "A node's base URL (FANFARE_URL, default http://127.0.0.1:8080).")
    var node: String?

    @Option(help: "Publish through Redis instead of a node: redis://host:port (FANFARE_REDIS_URL).")
    var redis: String?

    @Option(name: .customLong("client"), help: "Target one client id.")
    var clientID: String?

    @Option(name: .customLong("user"), help: "Target one user id.")
    var userID: String?

    @Option(help: "Target a channel.")
    var channel: String?

    @Flag(help: "Target every connection.")
    var broadcast = false

    @Option(help: "Event name.")
    var event = "message"

    @Option(help: "Payload, as JSON.")
    var payload = "{}"

    @Option(help: "Publisher key or publish token, sent as a bearer credential (FANFARE_PUBLISHER_KEY).")
    var key: String?

    @Option(help: "Key prefix used by the cluster (with --redis).")
    var prefix = "fanfare"

    func run() async throws {
        guard
            JSONSerialization.isValidJSONObject([
                try JSONSerialization.jsonObject(
                    with: Data(self.payload.utf8),
                    options: [.fragmentsAllowed]
                )
            ])
        else {
            throw ValidationError("--payload must be JSON")
        }
        if let redis = self.redis {
            try await self.publishThroughRedis(redis)
            return
        }
        var body: [String: Any] = ["event": self.event]
        if let clientID { body["clientId"] = clientID }
        if let userID { body["userId"] = userID }
        if let channel { body["channel"] = channel }
        if self.broadcast { body["broadcast"] = true }
        let payloadJSON = String(decoding: Data(self.payload.utf8), as: UTF8.self)
        var text = String(
            decoding: try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]),
            as: UTF8.self
        )
        text.removeLast()  // splice the payload in verbatim
        text += ",\"payload\":\(payloadJSON)}"
        let base = setting(self.node, "FANFARE_URL", default: "http://127.0.0.1:8080") ?? ""
        let response = try await FanfareHTTPClient.request(
            "POST",
            base + "/api/sse/notify",
            body: text,
            headers: bearer(setting(self.key, "FANFARE_PUBLISHER_KEY"))
        )
        print(response.body)
        if response.status != 200 { throw ExitCode(1) }
    }

    private func publishThroughRedis(_ url: String) async throws {
        for id in [self.clientID, self.userID].compactMap({ $0 }) where id.contains(":") || id.isEmpty {
            throw ValidationError("ids must not be empty or contain ':': \(id)")
        }
        let channel: String
        switch (self.clientID, self.userID, self.channel, self.broadcast) {
        case (let id?, nil, nil, false): channel = "client:\(id)"
        case (nil, let id?, nil, false): channel = "user:\(id)"
        case (nil, nil, let name?, false): channel = name
        case (nil, nil, nil, true): channel = "broadcast"
        default: throw ValidationError("give exactly one of --client, --user, --channel, --broadcast")
        }
        let connection = try await RedisConnection.connect(
            configuration: try RedisConfiguration(url: url),
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
            logger: Logger(label: "fanfare.publish")
        )
        let reply: RESPValue
        do {
            reply = try await connection.send(
                "FCALL",
                arguments: [
                    "fanfare_publish", 2, RESPArgument("\(self.prefix):history"), RESPArgument("\(self.prefix):nodes"),
                    RESPArgument(channel), RESPArgument(self.event), RESPArgument(self.payload), 10_000,
                    RESPArgument(self.prefix),
                ]
            )
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
        let items = reply.array ?? []
        let id = items.first?.string ?? "?"
        let nodes = items.count > 1 ? items[1].int ?? 0 : 0
        let connections = items.count > 2 ? items[2].int ?? 0 : 0
        print(#"{"ok":true,"id":"\#(id)","sent":\#(nodes > 0),"connections":\#(connections)}"#)
    }
}
