import Fanfare
import Foundation
import HiredisNIO
import Logging
import NIOPosix
import ServerSentEvents
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A `fanfare serve` process this test started, on a free loopback port, talking to the
/// test's own redis-server. Its log goes to a file that a failing test prints.
final class NodeProcess: Sendable {
    let id: String
    let port: Int
    let pid: pid_t
    let log: String

    /// The `fanfare` executable built next to the test bundle.
    static let executable: String? = {
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        let candidate = URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent("fanfare").path
        return access(candidate, X_OK) == 0 ? candidate : nil
    }()

    var address: String { "127.0.0.1:\(self.port)" }
    var url: String { "http://\(self.address)" }

    init(id: String, redis: String, arguments: [String] = []) async throws {
        guard let executable = Self.executable else {
            throw TestFailure("the fanfare executable is not built next to the tests; run `swift build --build-tests`")
        }
        self.id = id
        self.port = try RedisServerProcess.freePort()
        self.log = FileManager.default.temporaryDirectory.appendingPathComponent("fanfare-\(id)-\(UUID()).log").path
        self.pid = try RedisServerProcess.spawn(
            [
                executable, "serve", "--host", "127.0.0.1", "--port", "\(self.port)", "--redis", redis,
                "--node-id", id, "--event-loops", "1",
            ] + arguments,
            output: self.log
        )
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline {
            if self.exitStatus() != nil {
                throw TestFailure("node \(id) exited at start:\n\(self.logText())")
            }
            if let ready = try? await TestHTTPClient.request("GET", self.url + "/readyz"), ready.status == 200 {
                // What answers must be this node, not another server that holds the port.
                guard ready.body.contains(#""node":"\#(id)""#) else {
                    self.kill(SIGKILL)
                    throw TestFailure("another server answers on port \(self.port): \(ready.body.prefix(200))")
                }
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        self.kill(SIGKILL)
        throw TestFailure("node \(id) did not become ready:\n\(self.logText())")
    }

    /// Signals the node, unless it has exited (its pid is never signalled once reaped).
    func kill(_ signal: Int32) {
        guard self.exitStatus() == nil else { return }
        _ = Glibc.kill(self.pid, signal)
    }

    private let reaped = Mutex<Int32?>(nil)

    /// The exit code once the process ended (128 + signal when a signal ended it).
    func exitStatus() -> Int32? {
        if let done = self.reaped.withLock({ $0 }) { return done }
        var status: Int32 = 0
        guard waitpid(self.pid, &status, WNOHANG) == self.pid else { return nil }
        let code = RedisServerProcess.exitCode(status)
        self.reaped.withLock { $0 = code }
        return code
    }

    /// Waits for the process to end; its exit code.
    func waitForExit(within limit: Duration) async throws -> Int32 {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if let code = self.exitStatus() { return code }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestFailure("node \(self.id) did not exit within \(limit):\n\(self.logText())")
    }

    func logText() -> String {
        (try? String(contentsOfFile: self.log, encoding: .utf8)) ?? "(no log)"
    }

    func stop() {
        if self.exitStatus() == nil {
            self.kill(SIGKILL)
            _ = try? self.reapNow()
        }
        try? FileManager.default.removeItem(atPath: self.log)
    }

    private func reapNow() throws -> Int32? {
        var status: Int32 = 0
        _ = waitpid(self.pid, &status, 0)
        self.reaped.withLock { $0 = 128 + SIGKILL }
        return 128 + SIGKILL
    }

    deinit { self.stop() }
}

/// An SSE client that behaves like a browser's EventSource: when its stream ends it
/// waits the server's `retry:` and reconnects with `Last-Event-ID`; a refused or failed
/// connection is retried too. It records every event and which node served it. Given
/// several base URLs (nodes it knows), it moves to the next one whenever a stream ends or
/// is refused.
final class ResumingClient: Sendable {
    struct Received: Sendable {
        /// The event's channel and its position there (from its cursor), as publishes
        /// answer it.
        var id: String
        var channel: String
        var data: String

        var acknowledged: Acknowledged { Acknowledged(channel: self.channel, id: self.id) }
    }

    private struct State {
        var events: [Received] = []
        /// The node of each connection, in order (from `__connected`).
        var nodes: [String] = []
        /// The `retry:` in force when each connection ended.
        var retriesAtClose: [Int] = []
        var resets = 0
        var lastID: String?
        /// The position of each channel the events are told apart by, from the last id.
        var positions: [String: String] = [:]
        var stream: TestHTTPClient.EventStream?
        var stopped = false
    }

    let clientID: String
    /// `broadcast` and the topics it asked for: the channels its events may be on.
    let channels: [String]
    private let state = Mutex(State())
    private let task = Mutex<Task<Void, Never>?>(nil)

    convenience init(clientID: String, baseURL: String, topics: [String] = [], post: Bool = false) {
        self.init(clientID: clientID, baseURLs: [baseURL], topics: topics, post: post)
    }

    /// - Parameter post: opens each stream as `fetch` does, with a POST whose JSON body holds
    ///   the topics and, on a reconnect, the last id (no `Last-Event-ID` header).
    init(clientID: String, baseURLs: [String], topics: [String] = [], post: Bool = false) {
        self.clientID = clientID
        self.channels = ["broadcast"] + topics
        let query = topics.isEmpty || post ? "" : "?channels=" + topics.joined(separator: ",")
        let urls = baseURLs.map { $0 + "/api/sse/subscribe/\(clientID)" + query }
        let task = Task { [self] in await self.run(urls: urls, postTopics: post ? topics : nil) }
        self.task.withLock { $0 = task }
    }

    var events: [Received] { self.state.withLock { $0.events } }
    var nodes: [String] { self.state.withLock { $0.nodes } }
    var retriesAtClose: [Int] { self.state.withLock { $0.retriesAtClose } }
    var resets: Int { self.state.withLock { $0.resets } }

    private func run(urls: [String], postTopics: [String]?) async {
        var attempt = 0
        while !self.state.withLock({ $0.stopped }) {
            let url = urls[attempt % urls.count]
            attempt += 1
            var headers: [(String, String)] = []
            var body: String?
            let last = self.state.withLock { $0.lastID }
            if let topics = postTopics {
                var fields = [#""channels":[\#(topics.map { "\"\($0)\"" }.joined(separator: ","))]"#]
                if let last { fields.append(#""lastEventId":"\#(last)""#) }
                body = "{" + fields.joined(separator: ",") + "}"
            } else if let last {
                headers.append(("Last-Event-ID", last))
            }
            do {
                let stream = try await TestHTTPClient.stream(
                    url,
                    method: body == nil ? "GET" : "POST",
                    body: body,
                    headers: headers
                ) { [self] event in
                    self.record(event)
                }
                let stopped = self.state.withLock { state in
                    state.stream = stream
                    return state.stopped
                }
                if stopped || stream.status != 200 {
                    await stream.close()
                    try? await Task.sleep(for: .milliseconds(100))
                    continue
                }
                await stream.waitUntilClosed()
                let retry = stream.retryMilliseconds ?? 1_000
                self.state.withLock { $0.retriesAtClose.append(retry) }
                try? await Task.sleep(for: .milliseconds(retry))
            } catch {
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    private func record(_ event: ServerSentEvent) {
        let channels = self.channels
        self.state.withLock { state in
            func moveTo(_ id: String?) {
                guard let id else { return }
                state.lastID = id
                for channel in channels { state.positions[channel] = TestCursor.position(id, channel) }
            }
            switch event.event {
            case "__connected":
                let object = try? JSONSerialization.jsonObject(with: Data((event.data ?? "").utf8)) as? [String: Any]
                state.nodes.append(object?["nodeId"] as? String ?? "?")
                moveTo(event.id)
            case "__reset":
                state.resets += 1
                moveTo(event.id)
            case let name? where name.hasPrefix("__"):
                break
            default:
                // Its channel is the one whose position its id moved.
                let moved = channels.first { TestCursor.position(event.id, $0) != state.positions[$0] } ?? "?"
                state.events.append(
                    Received(id: TestCursor.position(event.id, moved) ?? "?", channel: moved, data: event.data ?? "")
                )
                moveTo(event.id)
            }
        }
    }

    func stop() async {
        let stream = self.state.withLock { state in
            state.stopped = true
            return state.stream
        }
        await stream?.close()
        let task = self.task.withLock { $0 }
        task?.cancel()  // ends a wait before reconnecting
        await task?.value
    }
}

/// An event a publisher had acknowledged: its channel and its position there.
struct Acknowledged: Hashable, Sendable, CustomStringConvertible {
    var channel: String
    var id: String
    var description: String { "\(self.channel) \(self.id)" }
}

/// Publishes every `interval` until stopped, on each of `channels` in turn (`broadcast` by
/// default), keeping what the cluster acknowledged and the status of every refused publish.
final class IntervalPublisher: Sendable {
    private struct State {
        var acknowledged: [Acknowledged] = []
        var refusals: [Int] = []
        var stopped = false
    }

    private let state = Mutex(State())
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(url: String, channels: [String] = ["broadcast"], interval: Duration = .milliseconds(50)) {
        let task = Task { [self] in
            var sequence = 0
            while !self.state.withLock({ $0.stopped }) {
                sequence += 1
                let channel = channels[sequence % channels.count]
                let target = channel == "broadcast" ? #""broadcast":true"# : #""channel":"\#(channel)""#
                let body = #"{\#(target),"event":"tick","payload":{"seq":\#(sequence)}}"#
                let response = try? await TestHTTPClient.request("POST", url + "/api/sse/notify", body: body)
                let json = response.flatMap {
                    try? JSONSerialization.jsonObject(with: Data($0.body.utf8)) as? [String: Any]
                }
                self.state.withLock { state in
                    if response?.status == 200, let id = json?["id"] as? String {
                        state.acknowledged.append(Acknowledged(channel: channel, id: id))
                    } else {
                        state.refusals.append(response?.status ?? 0)
                    }
                }
                try? await Task.sleep(for: interval)
            }
        }
        self.task.withLock { $0 = task }
    }

    var acknowledged: [Acknowledged] { self.state.withLock { $0.acknowledged } }

    /// Waits until at least `count` publishes were refused.
    func waitForRefusals(_ count: Int, seconds: Int = 20) async throws {
        try await withDeadline(seconds: seconds, "\(count) refused publishes") {
            while self.refusals.count < count { try await Task.sleep(for: .milliseconds(20)) }
        }
    }

    /// Waits until `count` more publishes than now have been acknowledged.
    func waitForAcknowledged(more count: Int, seconds: Int = 20) async throws {
        let target = self.acknowledged.count + count
        try await withDeadline(seconds: seconds, "\(count) more acknowledged publishes") {
            while self.acknowledged.count < target { try await Task.sleep(for: .milliseconds(20)) }
        }
    }
    /// The status of each refused publish (0: no answer at all).
    var refusals: [Int] { self.state.withLock { $0.refusals } }

    func stop() async {
        self.state.withLock { $0.stopped = true }
        let task = self.task.withLock { $0 }
        await task?.value
    }
}

/// What a client may, must or must not have been told with `__reset`.
enum ResetExpectation {
    case forbidden
    case required
    case allowed
}

/// Checks that `client` received every acknowledged event exactly once and, on each
/// channel, everything in increasing position order (which also rules out duplicates).
func expectExactlyOnceInOrder(
    _ client: ResumingClient,
    acknowledged: [Acknowledged],
    resets: ResetExpectation = .forbidden
) {
    for channel in client.channels {
        let ids = client.events.filter { $0.channel == channel }.map(\.id)
        let parsed = ids.map(TestCursor.order)
        let ordered = zip(parsed, parsed.dropFirst()).allSatisfy { $0.lexicographicallyPrecedes($1) }
        #expect(ordered, "\(client.clientID) received ids of \(channel) out of order or twice: \(ids)")
    }
    let missing = Set(acknowledged).subtracting(client.events.map(\.acknowledged))
    #expect(
        missing.isEmpty,
        "\(client.clientID) missed \(missing.count) acknowledged events: \(missing.sorted { $0.description < $1.description })"
    )
    switch resets {
    case .forbidden: #expect(client.resets == 0, "\(client.clientID) was told events were lost")
    case .required: #expect(client.resets > 0, "\(client.clientID) holds an event that is lost and was not told")
    case .allowed: break
    }
}

/// After a failover: the new master (reached through `redisURL`) keeps every acknowledged
/// event, and each client got every acknowledged event once, in order. A publish refused for
/// want of a replica may still have reached streams live from the old master and then be lost
/// with it: a client that holds such a position must be told so with `__reset`, and a
/// client that holds none must not be.
func expectEveryAcknowledgedEventKept(
    _ clients: [ResumingClient],
    acknowledged: [Acknowledged],
    redisURL: String
) async throws {
    // Through a client that routes by slot: in a cluster each history lives on one primary.
    let client = RedisClient(
        configuration: try RedisConfiguration(url: redisURL),
        eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
        logger: Logger(label: "test")
    )
    var kept = Set<Acknowledged>()
    for channel in Set(clients.flatMap(\.channels) + acknowledged.map(\.channel)) {
        let history = "fanfare:h:{\(channel)}"
        let entries = try await client.send(
            "XRANGE",
            arguments: [RESPArgument(history), "-", "+"],
            slot: RedisClusterSlot.of(history)
        )
        for id in (entries.array ?? []).compactMap({ $0.array?.first?.string }) {
            kept.insert(Acknowledged(channel: channel, id: id))
        }
    }
    await client.close()
    let lostAcknowledged = Set(acknowledged).subtracting(kept)
    #expect(lostAcknowledged.isEmpty, "acknowledged events are not on the new master: \(lostAcknowledged)")
    for client in clients {
        let lost = client.events.map(\.acknowledged).filter { !kept.contains($0) }
        expectExactlyOnceInOrder(client, acknowledged: acknowledged, resets: lost.isEmpty ? .forbidden : .required)
    }
}

/// Waits until every client received every acknowledged event.
func waitForDelivery(_ clients: [ResumingClient], acknowledged: [Acknowledged], seconds: Int = 20) async throws {
    let expected = Set(acknowledged)
    try await withDeadline(seconds: seconds, "every client to receive \(expected.count) events") {
        for client in clients {
            while !expected.isSubset(of: client.events.map(\.acknowledged)) {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }
}
