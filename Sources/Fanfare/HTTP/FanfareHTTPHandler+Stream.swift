import Foundation
internal import Logging
internal import NIOCore
internal import NIOHTTP1
import Synchronization

extension FanfareHTTPHandler {
    /// Turns this connection into an SSE stream.
    ///
    /// The response head and a `retry:` go out at once (so `onopen` fires, even through
    /// proxies); `__connected` follows once the node is subscribed to every channel of the
    /// stream. The response has no length: it ends when the connection closes, so frames
    /// are written to the socket as they are, without chunk framing.
    func startStream(context: ChannelHandlerContext, request: HTTPRequest, clientID requested: String?) {
        if self.services.draining.load(ordering: .relaxed) {
            self.respond(context: context, request: request, .error(FanfareError(.unavailable, "the node is draining")))
            return
        }
        let authenticator = self.services.authenticator
        if authenticator.streamsAreOpen {
            self.admitStream(context: context, request: request, requested: requested, grant: nil)
            return
        }
        // Checking a token is async (the key collection is an actor); the connection
        // waits in `.responding` meanwhile.
        let grant = self.runTask(context: context) { try await authenticator.grant(for: request) }
        grant.assumeIsolated().whenComplete { result in
            guard case .responding = self.state else { return }
            switch result {
            case .success(let grant):
                self.admitStream(context: context, request: request, requested: requested, grant: grant)
            case .failure(let error):
                self.refuse(context: context, request: request, error)
            }
        }
    }

    /// Works out the stream's channels (checked against the token's grant when there is
    /// one), takes its place under the connection limits, and opens it.
    private func admitStream(
        context: ChannelHandlerContext,
        request: HTTPRequest,
        requested: String?,
        grant: Grant?
    ) {
        let channels: [String]
        let clientID: String
        do {
            (clientID, channels) = try Self.streamChannels(request: request, requested: requested, grant: grant)
        } catch {
            self.refuse(context: context, request: request, error)
            return
        }
        let address = self.clientAddress(context: context, request: request)
        if let refusal = self.services.connectionLimiter.acquire(clientID: clientID, address: address) {
            let reason: NodeMetrics.Refusal
            let message: String
            switch refusal {
            case .client: (reason, message) = (.connectionsPerClient, "too many connections for this client id")
            case .address: (reason, message) = (.connectionsPerIP, "too many connections from this address")
            case .node: (reason, message) = (.connectionsPerNode, "this node has no room for more connections")
            }
            self.services.metrics.refused(reason)
            var response = HTTPResponse.error(FanfareError(.tooManyRequests, message))
            response.headers.add(name: "Retry-After", value: "5")
            self.respond(context: context, request: request, response)
            return
        }
        self.heldPlace = (clientID, address)
        self.openStream(context: context, request: request, clientID: clientID, channels: channels)
    }

    /// The client id and channels of a stream request, or the error to refuse it with.
    private static func streamChannels(
        request: HTTPRequest,
        requested: String?,
        grant: Grant?
    ) throws -> (String, [String]) {
        if let requested {
            guard ChannelName.isValidID(requested) else { throw FanfareError(.badRequest, "invalid client id") }
            if let grant, !grant.allows(ChannelName.client(requested)) {
                throw FanfareError(.forbidden, "the token does not grant client:\(requested)")
            }
        }
        let clientID = requested ?? "anon-\(UInt64.random(in: 0...UInt64.max) % 1_000_000_000_000)"
        var channels = [ChannelName.client(clientID)]
        // With tokens the user is the token's subject; a userId parameter is ignored.
        let userID = grant != nil ? grant?.userID : request.query["userId"]
        if let userID, !userID.isEmpty {
            guard ChannelName.isValidID(userID) else { throw FanfareError(.badRequest, "invalid userId") }
            channels.append(ChannelName.user(userID))
        }
        for topic in (request.query["channels"] ?? "").split(separator: ",") {
            let name = topic.trimmingWhitespace()
            guard !name.isEmpty else { continue }
            guard ChannelName.isValid(name) else {
                throw FanfareError(.badRequest, "invalid channel name: use 1-128 of A-Z a-z 0-9 _ . : @ -")
            }
            guard !name.hasPrefix("client:"), !name.hasPrefix("user:") else {
                throw FanfareError(.forbidden, "client: and user: channels are joined through ids, not topics")
            }
            if let grant, !grant.allows(name) {
                throw FanfareError(.forbidden, "the token does not grant the channel \(name)")
            }
            if !channels.contains(name) { channels.append(name) }
        }
        if !channels.contains(ChannelName.broadcast) { channels.append(ChannelName.broadcast) }
        return (clientID, channels)
    }

    private func openStream(
        context: ChannelHandlerContext,
        request: HTTPRequest,
        clientID: String,
        channels: [String]
    ) {
        // From here on the connection speaks raw SSE: the HTTP codec leaves the pipeline (its
        // parser state is most of an idle connection's memory). Anything the client still
        // sends is read and dropped.
        context.pipeline.syncOperations.removeHandler(name: Self.encoderName, promise: nil)
        context.pipeline.syncOperations.removeHandler(name: Self.decoderName, promise: nil)
        try? context.pipeline.syncOperations.addHandler(DiscardInbound(), position: .first)
        var head = ByteBuffer()
        head.writeStaticString("HTTP/1.1 200 OK\r\n")
        head.writeStaticString("Content-Type: text/event-stream; charset=utf-8\r\n")
        head.writeStaticString("Cache-Control: no-cache, no-transform\r\n")
        head.writeStaticString("Connection: keep-alive\r\n")
        head.writeStaticString("X-Accel-Buffering: no\r\n")
        for (name, value) in self.services.corsHeaders(origin: request.headers.first(name: "origin")) {
            head.writeString("\(name): \(value)\r\n")
        }
        head.writeStaticString("\r\n")
        head.writeString("retry: \(self.services.configuration.retryMilliseconds)\n\n")
        context.writeAndFlush(NIOAny(head), promise: nil)

        let stream = SSEStream(context: context, clientID: clientID, channels: channels)
        // A resume: the header wins over the query parameter (EventSource sends the header).
        let lastEventID = request.headers.first(name: "last-event-id") ?? request.query["lastEventId"]
        let resumeFrom = lastEventID.flatMap { $0.isEmpty ? nil : $0 }
        if resumeFrom != nil { stream.replayBuffer = [] }
        self.state = .streaming(stream)
        let services = self.services
        services.hub.register(stream).assumeIsolated().whenComplete { result in
            guard case .streaming(let current) = self.state, current === stream else { return }
            switch result {
            case .success:
                let body: [String: Any] = [
                    "clientId": clientID, "nodeId": services.identity.id, "channels": channels,
                    "time": WallClock.milliseconds(),
                ]
                var frame = ByteBuffer()
                frame.writeString("event: __connected\ndata: \(JSON.serialize(body))\n\n")
                context.writeAndFlush(NIOAny(frame), promise: nil)
                if let resumeFrom {
                    self.resume(context: context, stream: stream, from: resumeFrom)
                }
            case .failure(let error):
                // Without a confirmed subscription this stream could miss events silently:
                // close it and let the client come back after the retry delay.
                services.logger.warning(
                    "sse.subscribe.failed",
                    metadata: ["client.id": "\(clientID)", "error": "\(error)"]
                )
                var frame = ByteBuffer()
                frame.writeString("retry: \(services.configuration.retryMilliseconds)\n: unavailable\n\n")
                context.writeAndFlush(NIOAny(frame)).assumeIsolated().whenComplete { _ in
                    context.close(promise: nil)
                }
            }
        }
    }
}

extension FanfareHTTPHandler {
    /// Replays what `stream` missed after `lastEventID`, then releases its buffered live
    /// frames. The node is already subscribed, so nothing falls between the two.
    func resume(context: ChannelHandlerContext, stream: SSEStream, from lastEventID: String) {
        let services = self.services
        let channels = Set(stream.channels)
        let replay: EventLoopFuture<Replay>
        if let after = EventID(lastEventID) {
            replay = self.runTask(context: context) { try await services.bus.replay(after: after, channels: channels) }
        } else {
            replay = context.eventLoop.makeSucceededFuture(.gap(oldest: nil))  // not an id this cluster issues
        }
        replay.assumeIsolated().whenComplete { result in
            guard case .streaming(let current) = self.state, current === stream else { return }
            switch result {
            case .success(.events(let entries)):
                services.metrics.eventsReplayed.increment(by: entries.count)
                stream.finishReplay(
                    replayed: entries.map(\.frame),
                    replayedUpTo: entries.last?.id ?? EventID(lastEventID)
                )
            case .success(.gap(let oldest)):
                services.metrics.resetsSent.increment()
                var body: [String: Any] = ["lastEventId": lastEventID]
                body["oldestEventId"] = oldest.map { $0.description } ?? NSNull()
                var frame = ByteBuffer()
                frame.writeString("event: __reset\ndata: \(JSON.serialize(body))\n\n")
                stream.finishReplay(replayed: [frame], replayedUpTo: nil)
            case .failure(let error):
                services.logger.warning("sse.replay.failed", metadata: ["error": "\(error)"])
                var frame = ByteBuffer()
                frame.writeString("retry: \(services.configuration.retryMilliseconds)\n: unavailable\n\n")
                context.writeAndFlush(NIOAny(frame)).assumeIsolated().whenComplete { _ in
                    context.close(promise: nil)
                }
            }
        }
    }
}

extension Substring {
    /// Without leading and trailing spaces. Works on the UTF-8 bytes: a space is one byte,
    /// so both ends stay on character boundaries.
    func trimmingWhitespace() -> String {
        let bytes = self.utf8
        guard let first = bytes.firstIndex(where: { $0 != UInt8(ascii: " ") }),
            let last = bytes.lastIndex(where: { $0 != UInt8(ascii: " ") })
        else { return "" }
        return String(self[first..<bytes.index(after: last)])
    }
}

/// Reads and drops whatever a client sends on an SSE connection.
final class DiscardInbound: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

@available(*, unavailable)
extension DiscardInbound: Sendable {}
