internal import FanfareAPI
internal import Logging
internal import NIOCore
internal import NIOHTTP1
internal import ServerSentEvents

extension FanfareHTTPHandler {
    /// `GET /api/sse/history/{channel}?after=<position>&limit=<n>`: a page of the channel's
    /// retained events as JSON, for the publisher or admin credential or a token that grants
    /// the channel.
    func history(context: ChannelHandlerContext, request: HTTPRequest, channel: String) {
        let node = self.node
        let loop = context.eventLoop
        self.respondAsync(context: context, request: request) {
            // The credential first: a caller without one learns nothing about the channel.
            let grant = try await node.authenticator.historyGrant(request)
            let query = try HistoryQuery(channel: channel, query: request.query)
            if let grant, !grant.allows(channel) {
                throw FanfareError(.forbidden, "the token does not grant the channel \(channel)")
            }
            let page = try await node.bus.read(
                channel,
                after: query.after,
                limit: query.limit,
                maxBytes: node.configuration.historyPageBytes,
                on: loop
            )
            return .answer(.ok, query.answer(page))
        }
    }

    /// `POST /api/sse/disconnect`: ends the streams of a client, a user or a channel on every
    /// node, each after a `__disconnect` event; answers how many were closed.
    func disconnect(context: ChannelHandlerContext, request: HTTPRequest) {
        let node = self.node
        let address = self.clientAddress(context: context, request: request)
        let loop = context.eventLoop
        self.respondAsync(context: context, request: request) {
            _ = try await node.authenticator.authorizePublish(request, address: address)
            if let type = request.headers.first(name: "content-type"),
                type.split(separator: ";").first?.trimmingWhitespace().lowercased() != "application/json"
            {
                throw HTTPError(.unsupportedMediaType, "send the body as Content-Type: application/json")
            }
            let disconnect = try DisconnectTarget(body: request.body).request
            let nodes = try await node.bus.sendDisconnect(disconnect, on: loop)
            // Each node answers once its streams are closed; the wait is bounded, and the
            // answers are read at growing intervals (2, 4, 8 … 64 ms).
            var answers: [Int] = []
            var interval = 2
            let deadline = ContinuousClock.now + .seconds(2)
            while answers.count < nodes, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(interval))
                interval = min(interval * 2, 64)
                answers = try await node.bus.disconnectAnswers(disconnect, on: loop)
            }
            node.logger.info(
                "sse.disconnect.sent",
                metadata: ["channel": "\(disconnect.channel)", "nodes": "\(nodes)", "answered": "\(answers.count)"]
            )
            return .answer(
                .ok,
                DisconnectAnswer(closed: answers.reduce(0, +), nodes: nodes, answered: answers.count)
            )
        }
    }
}

/// The parameters of a history request, checked.
struct HistoryQuery: Sendable {
    static let defaultLimit = 100
    static let maximumLimit = 1_000

    let channel: String
    let after: StreamPosition
    let limit: Int

    init(channel: String, query: [String: String]) throws {
        guard ChannelName.isValid(channel) else {
            throw FanfareError(.invalidInput, "invalid channel name: use 1-128 of A-Z a-z 0-9 _ . : @ -")
        }
        guard !ChannelName.isReserved(channel) else {
            throw FanfareError(.invalidInput, "channel names starting with __ are reserved for the nodes")
        }
        for key in query.keys.sorted() where key != "after" && key != "limit" && key != "token" {
            throw FanfareError(.invalidInput, "unknown parameter \(key): use after, limit")
        }
        var after = StreamPosition.zero
        if let text = query["after"] {
            guard let position = StreamPosition(text) else {
                throw FanfareError(.invalidInput, "after must be a position such as 1712345678901-0")
            }
            after = position
        }
        var limit = Self.defaultLimit
        if let text = query["limit"] {
            guard let value = Int(text), (1...Self.maximumLimit).contains(value) else {
                throw FanfareError(.invalidInput, "limit must be 1 to \(Self.maximumLimit)")
            }
            limit = value
        }
        self.channel = channel
        self.after = after
        self.limit = limit
    }

    /// The page as JSON: each event's name and data read back from its SSE body.
    func answer(_ page: HistoryPage) -> HistoryAnswer {
        let events = page.events.map { event in
            var parser = ServerSentEventParser()
            let parsed = parser.parse(event.body).first
            return HistoryAnswer.Event(
                position: event.position.description,
                event: parsed?.event ?? "message",
                data: parsed?.data ?? "",
                final: event.isFinal ? true : nil
            )
        }
        let status: String
        switch page.status {
        case .ok: status = "ok"
        case .trimmed: status = "trimmed"
        case .gone: status = "gone"
        case .unknown: status = "unknown"
        }
        return HistoryAnswer(
            channel: self.channel,
            status: status,
            events: events,
            head: page.head.description,
            next: page.hasMore ? page.events.last?.position.description : nil,
            final: page.isFinal
        )
    }
}

/// A parsed `POST /api/sse/disconnect` body: exactly one of `clientId`, `userId` or
/// `channel`, an optional `reason` (up to 256 bytes) and `reconnect` (default false).
struct DisconnectTarget: Sendable {
    static let fields: Set<String> = ["clientId", "userId", "channel", "reason", "reconnect"]

    var request: DisconnectRequest

    init(body: [UInt8]) throws {
        guard !body.isEmpty, let fields = JSONObjectReader.fields(of: body) else {
            throw FanfareError(.invalidInput, "the body must be a JSON object")
        }
        for (index, field) in fields.enumerated() {
            guard Self.fields.contains(field.key) else {
                throw FanfareError(
                    .invalidInput,
                    "unknown field \(field.key): use clientId, userId, channel, reason, reconnect"
                )
            }
            guard !fields[..<index].contains(where: { $0.key == field.key }) else {
                throw FanfareError(.invalidInput, "the field \(field.key) is given twice")
            }
        }
        func text(_ key: String) throws -> String? {
            guard let field = fields.first(where: { $0.key == key }) else { return nil }
            guard let string = field.string else { throw FanfareError(.invalidInput, "\(key) must be a string") }
            return string
        }
        let clientID = try text("clientId")
        let userID = try text("userId")
        let channel = try text("channel")
        guard [clientID, userID, channel].compactMap({ $0 }).count == 1 else {
            throw FanfareError(.invalidInput, "give exactly one target: clientId, userId or channel")
        }
        let name: String
        if let clientID {
            guard ChannelName.isValidID(clientID) else { throw FanfareError(.invalidInput, "invalid clientId") }
            name = ChannelName.client(clientID)
        } else if let userID {
            guard ChannelName.isValidID(userID) else { throw FanfareError(.invalidInput, "invalid userId") }
            name = ChannelName.user(userID)
        } else {
            let channel = channel ?? ""
            guard ChannelName.isValid(channel), !ChannelName.isReserved(channel) else {
                throw FanfareError(.invalidInput, "invalid channel name: use 1-128 of A-Z a-z 0-9 _ . : @ -")
            }
            name = channel
        }
        let reason = try text("reason") ?? ""
        guard reason.utf8.count <= 256 else { throw FanfareError(.invalidInput, "reason must be at most 256 bytes") }
        var reconnect = false
        if let field = fields.first(where: { $0.key == "reconnect" }) {
            guard case .bool(let value) = field.kind else {
                throw FanfareError(.invalidInput, "reconnect must be true or false")
            }
            reconnect = value
        }
        self.request = DisconnectRequest(channel: name, reason: reason, reconnect: reconnect)
    }
}
