import ArgumentParser
import Fanfare
import FanfareAPI
import FanfareClient
import Foundation
import HiredisNIO
import Logging
import NIOPosix

struct PublishCommand: AsyncParsableCommand, EnvironmentConfigurable {
    static let environment: [EnvironmentOption] =
        NodeOptions.environment + RedisTLSOptions.environment + [.secret("key", variable: "FANFARE_PUBLISHER_KEY")]

    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Publish an event through a node (HTTP or HTTPS) or straight through Redis.",
        discussion: EnvironmentOption.help(Self.environment)
    )

    @OptionGroup var nodeOptions: NodeOptions

    @OptionGroup var redisTLS: RedisTLSOptions

    @Option(
        help: "Publish through Redis instead of a node: redis://host:port, redis-sentinel://… or redis-cluster://…."
    )
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

    @Option(help: "A key that makes a retry of this publish a no-op within the cluster's idempotency window.")
    var idempotencyKey: String?

    @Flag(help: "The event ends its channel (a run): run streams end after it, and later publishes get 409.")
    var final = false

    @Option(help: "Publisher key or publish token, sent as a bearer credential.")
    var key: String?

    @Option(help: "File holding the publisher key or token.")
    var keyFile: String?

    @Option(help: "Key prefix of the cluster (with --redis).")
    var prefix = "fanfare"

    @Option(
        help: """
            Publish many events: a file (- for standard input) with one notify body per line, \
            as the HTTP API takes it. They go out as batches (JSON arrays) in order; each batch's \
            answer is printed on a line of its own.
            """
    )
    var batch: String?

    @Option(help: "With --batch: events per request (1 to 1000).")
    var batchSize = 1_000

    /// The notify body's fields other than the payload, in the API's JSON.
    private struct Target: Encodable {
        var clientId: String?
        var userId: String?
        var channel: String?
        var broadcast: Bool?
        var event: String
        var idempotencyKey: String?
        var final: Bool?
    }

    func run() async throws {
        guard (try? JSONSerialization.jsonObject(with: Data(self.payload.utf8), options: [.fragmentsAllowed])) != nil
        else {
            throw ValidationError("--payload must be JSON")
        }
        if let batch = self.batch {
            try await self.publishBatches(batch)
            return
        }
        if self.redis == nil, self.redisTLS.settings != RedisTLSSettings() {
            throw ValidationError("the --redis-tls… options are for publishing through Redis (--redis)")
        }
        if let redis = self.redis {
            try await self.publishThroughRedis(redis)
            return
        }
        let target = Target(
            clientId: self.clientID,
            userId: self.userID,
            channel: self.channel,
            broadcast: self.broadcast ? true : nil,
            event: self.event,
            idempotencyKey: self.idempotencyKey,
            final: self.final ? true : nil
        )
        // The payload is spliced in as written, so it reaches subscribers byte for byte.
        var body = try APIJSON.encode(target)
        body.removeLast()
        body += Array(#","payload":"#.utf8) + Array(self.payload.utf8) + [UInt8(ascii: "}")]
        let key = try Secret.read(self.key, file: self.keyFile, option: "key")
        let response = try await self.nodeOptions.client().using { client in
            try await client.request("POST", self.nodeOptions.url("/api/sse/notify"), body: body, headers: bearer(key))
        }
        print(response.text)
        if response.status != 200 { throw ExitCode(1) }
    }

    private func publishBatches(_ path: String) async throws {
        guard self.redis == nil else {
            throw ValidationError(
                "--batch publishes through a node; with --redis, pipeline FCALLs of the publish function"
            )
        }
        guard (1...1_000).contains(self.batchSize) else { throw ValidationError("--batch-size must be 1 to 1000") }
        let text: String
        if path == "-" {
            text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        } else {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ValidationError("cannot read \(path)")
            }
            text = String(decoding: data, as: UTF8.self)
        }
        let lines = text.split(whereSeparator: \.isNewline).filter { !$0.allSatisfy(\.isWhitespace) }
        guard !lines.isEmpty else { throw ValidationError("\(path) holds no events") }
        let key = try Secret.read(self.key, file: self.keyFile, option: "key")
        var failed = false
        try await self.nodeOptions.client().using { client in
            var start = lines.startIndex
            while start < lines.endIndex {
                let end = min(start + self.batchSize, lines.endIndex)
                let body = Array(("[" + lines[start..<end].joined(separator: ",") + "]").utf8)
                let response = try await client.request(
                    "POST",
                    self.nodeOptions.url("/api/sse/notify"),
                    body: body,
                    headers: bearer(key)
                )
                print(response.text)
                if response.status != 200 {
                    // What follows would be published out of order after a gap: stop here.
                    failed = true
                    break
                }
                start = end
            }
        }
        if failed { throw ExitCode(1) }
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
        // Routed by slot, so a redis-cluster:// URL reaches the channel's primary.
        var configuration = try RedisConfiguration(url: url)
        configuration.tls = try self.redisTLS.tls(for: url)
        let client = RedisClient(
            configuration: configuration,
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
            logger: Logger(label: "fanfare.publish")
        )
        // The same call any service makes: the channel's history key (and an idempotency
        // key in the same slot), the event and its data; the history policy is the cluster's.
        let history = "\(self.prefix):h:{\(channel)}"
        var keys = [RESPArgument(history)]
        if let key = self.idempotencyKey { keys.append(RESPArgument("\(self.prefix):i:{\(channel)}:\(key)")) }
        let reply: RESPValue
        do {
            reply = try await client.send(
                "FCALL",
                arguments: [RESPArgument("\(self.prefix)_publish"), RESPArgument(keys.count)] + keys + [
                    RESPArgument(self.event), RESPArgument(self.payload),
                ] + (self.final ? [RESPArgument("final")] : []),
                slot: RedisClusterSlot.of(history)
            )
        } catch {
            await client.close()
            throw error
        }
        await client.close()
        let items = reply.array ?? []
        guard let id = items.first?.string else {
            throw ValidationError("unexpected reply from fanfare_publish: \(reply)")
        }
        let nodes = items.count > 1 ? items[1].int ?? 0 : 0
        let duplicate = items.count > 2 && items[2].int == 1
        // Straight through Redis there is no registry snapshot to count connections with.
        print(
            try APIJSON.string(
                NotifyAnswer(id: id, sent: nodes > 0, connections: 0, duplicate: duplicate ? true : nil)
            )
        )
    }
}
