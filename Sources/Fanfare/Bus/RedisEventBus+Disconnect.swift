internal import HiredisNIO
internal import NIOCore

/// Disconnect requests: sent on the channel's own pub/sub channel, so they reach exactly the
/// nodes subscribed to it (on a Redis Cluster, through the channel's shard); answered under
/// a key of the request's own.
extension RedisEventBus {
    func sendDisconnect(_ request: DisconnectRequest, on eventLoop: any EventLoop) async throws -> Int {
        let reply = try await self.fcall(
            "disconnect",
            keys: [RESPArgument(self.names.history(request.channel))],
            slot: self.slot(request.channel),
            arguments: [
                RESPArgument(request.id), RESPArgument(request.reconnect ? "1" : "0"), RESPArgument(request.reason),
            ],
            on: eventLoop
        )
        return Int(reply.int ?? 0)
    }

    func answerDisconnect(_ request: DisconnectRequest, closed: Int) async throws {
        let key = self.names.disconnectAnswers(request.id)
        _ = try await self.fcall(
            "disconnected",
            keys: [RESPArgument(key)],
            slot: RedisClusterSlot.of(key),
            arguments: [RESPArgument(closed)],
            on: self.busLoop
        )
    }

    func disconnectAnswers(_ request: DisconnectRequest, on eventLoop: any EventLoop) async throws -> [Int] {
        let key = self.names.disconnectAnswers(request.id)
        let reply = try await self.fcall(
            "disconnects",
            keys: [RESPArgument(key)],
            slot: RedisClusterSlot.of(key),
            on: eventLoop
        )
        return (reply.array ?? []).map { Int($0.string ?? "") ?? Int($0.int ?? 0) }
    }
}
