/// A parsed `POST /api/sse/notify` body: exactly one target, an event name, a payload.
struct NotifyTarget: Sendable {
    static let fields: Set<String> = [
        "clientId", "userId", "channel", "broadcast", "event", "payload", "idempotencyKey", "final",
    ]

    var request: PublishRequest
    var clientID: String?

    /// The most events one batch may hold.
    static let batchLimit = 1_000

    /// A batch body: a JSON array of notify objects, each checked as a single body is.
    /// Any bad item refuses the whole batch, naming the item (from 0).
    static func batch(body: [UInt8]) throws -> [NotifyTarget] {
        guard let elements = JSONObjectReader.elements(of: body) else {
            throw FanfareError(.invalidInput, "the body must be a JSON object, or an array of them")
        }
        guard !elements.isEmpty else { throw FanfareError(.invalidInput, "the batch is empty") }
        guard elements.count <= Self.batchLimit else {
            throw FanfareError(
                .invalidInput,
                "the batch holds \(elements.count) events; send at most \(Self.batchLimit) per request"
            )
        }
        return try elements.enumerated().map { index, span in
            do {
                return try NotifyTarget(body: body, span: span)
            } catch let error as FanfareError {
                throw FanfareError(error.code, "item \(index): \(error.message)")
            }
        }
    }

    init(body: [UInt8]) throws {
        try self.init(body: body, fields: JSONObjectReader.fields(of: body))
    }

    /// The item at `span` of a batch body (already read as valid JSON).
    init(body: [UInt8], span: Range<Int>) throws {
        try self.init(body: body, fields: JSONObjectReader.fields(of: body, in: span))
    }

    private init(body: [UInt8], fields: [JSONObjectReader.Field]?) throws {
        guard !body.isEmpty, let fields else {
            throw FanfareError(.invalidInput, "the body must be a JSON object")
        }
        // At most eight known fields: scans of the few there are beat a dictionary.
        for (index, field) in fields.enumerated() {
            guard Self.fields.contains(field.key) else {
                throw FanfareError(
                    .invalidInput,
                    "unknown field \(field.key): use clientId, userId, channel, broadcast, event, payload, idempotencyKey, final"
                )
            }
            guard !fields[..<index].contains(where: { $0.key == field.key }) else {
                throw FanfareError(.invalidInput, "the field \(field.key) is given twice")
            }
        }
        func field(_ key: String) -> JSONObjectReader.Field? {
            fields.first { $0.key == key }
        }
        func text(_ key: String) throws -> String? {
            guard let field = field(key) else { return nil }
            guard let string = field.string else { throw FanfareError(.invalidInput, "\(key) must be a string") }
            return string
        }
        let clientID = try text("clientId")
        let userID = try text("userId")
        let channel = try text("channel")
        func flag(_ key: String) throws -> Bool {
            guard let field = field(key) else { return false }
            guard case .bool(let value) = field.kind else {
                throw FanfareError(.invalidInput, "\(key) must be true or false")
            }
            return value
        }
        let broadcast = try flag("broadcast")
        let isFinal = try flag("final")
        let targets = [clientID != nil, userID != nil, channel != nil, broadcast].filter { $0 }.count
        guard targets == 1 else {
            throw FanfareError(.invalidInput, "give exactly one target: clientId, userId, channel or broadcast")
        }
        if isFinal, channel.map(ChannelName.canEnd) != true {
            // A client's, a user's or everyone's channel never ends: only a run's does.
            throw FanfareError(
                .invalidInput,
                "final ends a run's channel: client:, user: and broadcast channels never end"
            )
        }
        let name: String
        if let clientID {
            guard ChannelName.isValidID(clientID) else { throw FanfareError(.invalidInput, "invalid clientId") }
            name = ChannelName.client(clientID)
        } else if let userID {
            guard ChannelName.isValidID(userID) else { throw FanfareError(.invalidInput, "invalid userId") }
            name = ChannelName.user(userID)
        } else if let channel {
            guard ChannelName.isValid(channel) else {
                throw FanfareError(.invalidInput, "invalid channel name: use 1-128 of A-Z a-z 0-9 _ . : @ -")
            }
            guard !ChannelName.isReserved(channel) else {
                throw FanfareError(.invalidInput, "channel names starting with __ are reserved for the nodes")
            }
            guard ChannelName.presenceOf(channel) == nil else {
                throw FanfareError(
                    .invalidInput,
                    "presence: channels carry the nodes' joins and leaves; publish on another channel"
                )
            }
            name = channel
        } else {
            name = ChannelName.broadcast
        }
        let event = try text("event") ?? "message"
        guard !event.hasPrefix("__") else {
            throw FanfareError(.invalidInput, "event names starting with __ are reserved")
        }
        guard ChannelName.isValid(event) else {
            throw FanfareError(.invalidInput, "event must be 1-128 of A-Z a-z 0-9 _ . : @ - (no spaces, CR, LF or NUL)")
        }
        // The payload goes on as the publisher wrote it, without whitespace between tokens.
        let data = field("payload").map { JSONObjectReader.compact(body, $0.span) } ?? "null"
        let idempotencyKey = try text("idempotencyKey")
        if let idempotencyKey, !ChannelName.isValid(idempotencyKey) {
            throw FanfareError(.invalidInput, "idempotencyKey must be 1-128 of A-Z a-z 0-9 _ . : @ -")
        }
        self.request = PublishRequest(
            channel: name,
            event: event,
            data: data,
            idempotencyKey: idempotencyKey,
            isFinal: isFinal
        )
        self.clientID = clientID
    }
}
