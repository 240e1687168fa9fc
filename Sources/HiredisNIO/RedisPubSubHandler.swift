internal import NIOCore

/// What a connection in subscribe mode can receive (RESP2 pushes, matched by keyword).
enum RedisPubSubPush: Equatable {
    case message(channel: String, payload: ByteBuffer)
    case patternMessage(pattern: String, channel: String, payload: ByteBuffer)
    case subscribed(RedisSubscriptionKind, String)
    case unsubscribed(RedisSubscriptionKind, String)
    case pong
    /// A cluster refused a sharded (un)subscription: its slot is served elsewhere (`MOVED`)
    /// or is being migrated (`ASK`).
    case redirected(RedisRedirection)

    init(_ value: RESPValue) throws {
        switch value {
        case .simpleString(let text) where text.uppercased() == "PONG":
            self = .pong
        case .error(let message):
            guard let redirection = RedisRedirection(error: message) else {
                throw RedisClientError(.serverError, message)
            }
            self = .redirected(redirection)
        case .array(let items):
            guard let keyword = items.first?.string?.lowercased() else {
                throw RedisClientError(.protocolError, "unexpected reply in subscribe mode: \(value)")
            }
            switch (keyword, items.count) {
            case ("message", 3):
                guard let channel = items[1].string, let payload = items[2].bytes else { break }
                self = .message(channel: channel, payload: payload)
                return
            case ("pmessage", 4):
                guard let pattern = items[1].string, let channel = items[2].string, let payload = items[3].bytes
                else { break }
                self = .patternMessage(pattern: pattern, channel: channel, payload: payload)
                return
            case ("smessage", 3):
                guard let channel = items[1].string, let payload = items[2].bytes else { break }
                self = .message(channel: channel, payload: payload)
                return
            case ("subscribe", 3), ("psubscribe", 3), ("ssubscribe", 3), ("unsubscribe", 3), ("punsubscribe", 3),
                ("sunsubscribe", 3):
                // UNSUBSCRIBE with nothing subscribed answers with a nil name; it names no one.
                let name = items[1].string ?? ""
                let kind: RedisSubscriptionKind
                switch keyword {
                case "psubscribe", "punsubscribe": kind = .pattern
                case "ssubscribe", "sunsubscribe": kind = .shard
                default: kind = .channel
                }
                self = keyword.hasSuffix("unsubscribe") ? .unsubscribed(kind, name) : .subscribed(kind, name)
                return
            case ("pong", 2):
                self = .pong
                return
            default:
                break
            }
            throw RedisClientError(.protocolError, "unexpected reply in subscribe mode: \(value)")
        default:
            throw RedisClientError(.protocolError, "unexpected reply in subscribe mode: \(value)")
        }
    }
}

/// Hands every push of a subscribe-mode connection to its owner. Loop-confined.
final class RedisPubSubHandler: ChannelInboundHandler {
    typealias InboundIn = RESPValue

    private let onPush: (RedisPubSubPush) -> Void

    init(onPush: @escaping (RedisPubSubPush) -> Void) {
        self.onPush = onPush
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            self.onPush(try RedisPubSubPush(Self.unwrapInboundIn(data)))
        } catch {
            context.fireErrorCaught(error)
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension RedisPubSubHandler: Sendable {}
