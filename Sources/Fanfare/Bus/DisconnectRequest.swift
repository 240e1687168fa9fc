internal import NIOCore

/// A service's request to end every stream of one channel on every node
/// (`POST /api/sse/disconnect`), as the bus carries it to the nodes subscribed to the channel.
///
/// Each node that gets it closes its streams of the channel, after a `__disconnect` event,
/// and answers with the number it closed under the request's id; the node that sent it sums
/// the answers.
struct DisconnectRequest: Sendable, Equatable {
    /// Names the request's answers: letters and digits.
    var id: String
    var channel: String
    var reason: String
    var reconnect: Bool
    /// Only the stream holding this lease under a per-user limit ends (a newer stream of
    /// its user took its place); nobody answers such a request.
    var lease: String?

    /// A request with a fresh random id.
    init(channel: String, reason: String, reconnect: Bool) {
        let id = (0..<2).map { _ in String(UInt64.random(in: 0...UInt64.max), radix: 36) }.joined()
        self.init(id: id, channel: channel, reason: reason, reconnect: reconnect)
    }

    init(id: String, channel: String, reason: String, reconnect: Bool, lease: String? = nil) {
        self.id = id
        self.channel = channel
        self.reason = reason
        self.reconnect = reconnect
        self.lease = lease
    }

    /// The request that ends the one stream of `user` holding `lease` (its place under the
    /// per-user limit went to a newer stream), without a reconnect.
    static func endingPlace(of user: String, lease: String, reason: String) -> DisconnectRequest {
        DisconnectRequest(id: lease, channel: ChannelName.user(user), reason: reason, reconnect: false, lease: lease)
    }

    /// Whether a pub/sub message is a disconnect request rather than an event (events start
    /// with their position, a digit).
    static func isRequest(_ payload: ByteBuffer) -> Bool {
        payload.readableBytesView.first == UInt8(ascii: "!")
    }

    /// The pub/sub message `! <id> <0|1>\n<reason>` of channel `channel`, or
    /// `! <id> <0|1> <lease>\n<reason>` for one stream; `nil` for another.
    init?(channel: String, message payload: ByteBuffer) {
        let view = payload.readableBytesView
        guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let head = String(decoding: view[view.startIndex..<newline], as: UTF8.self).split(separator: " ")
        guard head.count == 3 || head.count == 4, head[0] == "!", !head[1].isEmpty, head[2] == "0" || head[2] == "1"
        else { return nil }
        self.init(
            id: String(head[1]),
            channel: channel,
            reason: String(decoding: view[(newline + 1)...], as: UTF8.self),
            reconnect: head[2] == "1",
            lease: head.count == 4 ? String(head[3]) : nil
        )
    }
}
