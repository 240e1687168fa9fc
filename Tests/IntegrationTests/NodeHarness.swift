import Fanfare
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServerSentEvents
import Synchronization
import Testing

/// Nodes started in this process on free loopback ports, on their own Redis (or embedded).
final class NodeHarness: Sendable {
    let redis: RedisServerProcess?
    let nodes: [RunningNode]
    let urls: [String]

    init(
        nodes count: Int,
        embedded: Bool = false,
        configure: (inout FanfareConfiguration) -> Void = { _ in }
    )
        async throws
    {
        self.redis = embedded ? nil : try await RedisServerProcess()
        var nodes: [RunningNode] = []
        var urls: [String] = []
        for index in 0..<count {
            var configuration = FanfareConfiguration(
                host: "127.0.0.1",
                // Below the ephemeral range: once a node stops, nothing can connect to
                // itself on its old port (which an ephemeral port from bind(0) allows).
                port: try RedisServerProcess.freePort(),
                redisURL: self.redis?.url,
                nodeID: "node-\(index)",
                registryInterval: .milliseconds(200),
                // The default: a loaded machine can hold a node's refresh up for a second or two.
                registryTTL: .seconds(5),
                eventLoops: 2
            )
            configure(&configuration)
            let node = try await RunningNode(configuration: configuration)
            nodes.append(node)
            urls.append("http://127.0.0.1:\(node.address.port ?? 0)")
        }
        self.nodes = nodes
        self.urls = urls
    }

    func stop() async {
        for node in self.nodes { await node.shutdown() }
        self.redis?.stop()
    }

    func notify(_ node: Int, _ body: String) async throws -> (status: Int, json: [String: Any]) {
        let response = try await TestHTTPClient.request("POST", self.urls[node] + "/api/sse/notify", body: body)
        let json = (try? JSONSerialization.jsonObject(with: Data(response.body.utf8))) as? [String: Any] ?? [:]
        return (response.status, json)
    }

    func metrics(_ node: Int) async throws -> [String: Any] {
        let response = try await TestHTTPClient.request("GET", self.urls[node] + "/api/sse/metrics")
        return (try JSONSerialization.jsonObject(with: Data(response.body.utf8))) as? [String: Any] ?? [:]
    }

    /// Waits until every node's metrics report `connections` in total.
    func waitForConnections(_ connections: Int) async throws {
        try await withDeadline("every node to count \(connections) connections") {
            for node in 0..<self.nodes.count {
                while (try await self.metrics(node)["totalConnections"] as? Int) != connections {
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
        }
    }
}

/// A node running in this process, as `fanfare serve` runs one: ``FanfareNode/run()`` in a
/// task of its own until ``shutdown()`` drains it.
final class RunningNode: Sendable {
    let node: FanfareNode
    let address: SocketAddress
    let operationsAddress: SocketAddress?
    private let task: Task<Void, any Error>

    init(configuration: FanfareConfiguration) async throws {
        let node = try await FanfareNode(configuration: configuration, logger: Self.logger)
        let task = Task { try await node.run() }
        do {
            (self.address, self.operationsAddress) = try await withDeadline("the node to listen") {
                (try await node.localAddress(), try await node.operationsAddress())
            }
        } catch {
            task.cancel()
            _ = await task.result
            throw error
        }
        self.node = node
        self.task = task
    }

    /// Quiet, unless `FANFARE_TEST_LOG` names a level (`debug`, `info`, …) for the nodes
    /// of this process to log at, on standard error.
    static let logger: Logger = {
        guard let name = ProcessInfo.processInfo.environment["FANFARE_TEST_LOG"],
            let level = Logger.Level(rawValue: name)
        else { return Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }) }
        return Logger(label: "test") { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }()

    /// Drains and stops the node, as SIGTERM does.
    func shutdown() async {
        await self.node.triggerGracefulShutdown()
        _ = await self.task.result
    }
}

/// An SSE stream opened by a test; events arrive in order through `next()`.
actor TestStream {
    nonisolated let stream: TestHTTPClient.EventStream
    private var iterator: AsyncStream<ServerSentEvent>.AsyncIterator?

    init(_ url: String, method: String = "GET", body: String? = nil, headers: [(String, String)] = []) async throws {
        let (events, continuation) = AsyncStream.makeStream(of: ServerSentEvent.self)
        self.iterator = events.makeAsyncIterator()
        let stream = try await TestHTTPClient.stream(url, method: method, body: body, headers: headers) {
            continuation.yield($0)
        }
        self.stream = stream
        Task {
            await stream.waitUntilClosed()
            continuation.finish()
        }
    }

    private func take(includingControl: Bool) async throws -> ServerSentEvent {
        var iterator = self.iterator
        self.iterator = nil
        defer { self.iterator = iterator }
        while let event = await iterator?.next(isolation: #isolation) {
            if includingControl || !(event.event ?? "").hasPrefix("__") { return event }
        }
        throw TestFailure("the stream ended")
    }

    /// The next event that is not a node control event (`__connected`, heartbeats).
    func next(includingControl: Bool = false) async throws -> ServerSentEvent {
        try await withDeadline("the next event") { try await self.take(includingControl: includingControl) }
    }

    /// Waits for `__connected`: from then on the node delivers to this stream.
    func connected() async throws -> [String: String] {
        let event = try await self.next(includingControl: true)
        #expect(event.event == "__connected")
        return ["data": event.data ?? ""]
    }

    func close() async { await self.stream.close() }
}
