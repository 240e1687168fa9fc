import Foundation

/// A parsed `POST /api/sse/notify` body: exactly one target, an event name, a payload.
struct NotifyTarget: Sendable {
    var request: PublishRequest
    var clientID: String?

    init(body: [UInt8]) throws {
        guard !body.isEmpty, let object = JSON.parse(body) as? [String: Any] else {
            throw FanfareError(.badRequest, "the body must be a JSON object")
        }
        func text(_ key: String) throws -> String? {
            guard let value = object[key], !(value is NSNull) else { return nil }
            guard let string = value as? String else { throw FanfareError(.badRequest, "\(key) must be a string") }
            return string
        }
        let clientID = try text("clientId")
        let userID = try text("userId")
        let channel = try text("channel")
        var broadcast = false
        if let value = object["broadcast"], !(value is NSNull) {
            guard let flag = value as? Bool else { throw FanfareError(.badRequest, "broadcast must be true or false") }
            broadcast = flag
        }
        let targets = [clientID != nil, userID != nil, channel != nil, broadcast].filter { $0 }.count
        guard targets == 1 else {
            throw FanfareError(.badRequest, "give exactly one target: clientId, userId, channel or broadcast")
        }
        let name: String
        if let clientID {
            guard ChannelName.isValidID(clientID) else { throw FanfareError(.badRequest, "invalid clientId") }
            name = ChannelName.client(clientID)
        } else if let userID {
            guard ChannelName.isValidID(userID) else { throw FanfareError(.badRequest, "invalid userId") }
            name = ChannelName.user(userID)
        } else if let channel {
            guard ChannelName.isValid(channel) else {
                throw FanfareError(.badRequest, "invalid channel name: use 1-128 of A-Z a-z 0-9 _ . : @ -")
            }
            name = channel
        } else {
            name = ChannelName.broadcast
        }
        let event = try text("event") ?? "message"
        guard !event.isEmpty, event.utf8.count <= 128 else {
            throw FanfareError(.badRequest, "event must be 1-128 bytes")
        }
        guard !event.utf8.contains(where: { $0 == 0x0A || $0 == 0x0D || $0 == 0 }) else {
            throw FanfareError(.badRequest, "event must not contain CR, LF or NUL")
        }
        guard !event.hasPrefix("__") else {
            throw FanfareError(.badRequest, "event names starting with __ are reserved")
        }
        let data = JSON.serialize(object["payload"] ?? NSNull())
        self.request = PublishRequest(channel: name, event: event, data: data)
        self.clientID = clientID
    }
}
