internal import HiredisNIO
internal import NIOCore

/// Reading history: channels' heads and pages after a position.
extension RedisEventBus {
    /// One key per call (each channel's slot on its own, ready for Redis Cluster), all
    /// of them pipelined in one round trip.
    func heads(of channels: [String], on eventLoop: any EventLoop) async throws -> [StreamPosition] {
        guard !channels.isEmpty else { return [] }
        let function = RESPArgument(self.names.function("head"))
        let client = self.lane(on: eventLoop).client
        let commands = channels.map { channel in
            RedisClient.Command(
                "FCALL",
                [function, RESPArgument(1), RESPArgument(self.names.history(channel))],
                slot: self.slot(channel)
            )
        }
        var replies: [RESPValue]
        do {
            replies = try await client.replies(to: commands).map { try $0.result.get() }
            if replies.contains(where: { $0.isMissingFunction }) {
                try await self.ensureLibraryEverywhere(client)
                replies = try await client.replies(to: commands).map { try $0.result.get() }
            }
        } catch {
            throw FanfareError(.unavailable, "Redis is unavailable; history cannot be read", underlying: error)
        }
        return try replies.map { reply in
            if case .error(let message) = reply {
                // Loading, out of memory, a replica that cannot answer: try again later.
                throw FanfareError(.unavailable, "Redis refused to read a channel's head: \(message)")
            }
            guard let text = reply.string, let position = StreamPosition(text) else {
                throw FanfareError(.internalError, "unexpected reply from \(self.names.function("head")): \(reply)")
            }
            return position
        }
    }

    func read(
        _ channel: String,
        after position: StreamPosition,
        limit: Int,
        maxBytes: Int,
        on eventLoop: any EventLoop
    ) async throws -> HistoryPage {
        let reply: RESPValue
        do {
            reply = try await self.fcall(
                "read",
                keys: [RESPArgument(self.names.history(channel))],
                slot: self.slot(channel),
                arguments: [RESPArgument(position.description), RESPArgument(limit), RESPArgument(maxBytes)],
                on: eventLoop
            )
        } catch {
            throw FanfareError(.unavailable, "Redis is unavailable; history cannot be read", underlying: error)
        }
        guard let parts = reply.array, parts.count == 4, let status = parts[0].string,
            let head = parts[1].string.flatMap({ StreamPosition($0) }), let entries = parts[2].array
        else {
            throw FanfareError(.internalError, "unexpected reply from \(self.names.function("read"))")
        }
        let pageStatus: HistoryPage.Status
        switch status {
        case "ok": pageStatus = .ok
        case "trimmed": pageStatus = .trimmed
        case "gone": pageStatus = .gone
        default: return HistoryPage(status: .unknown, head: head, events: [], isFinal: parts[3].int == 1)
        }
        var events: [BusEvent] = []
        events.reserveCapacity(entries.count)
        for entry in entries {
            guard let fields = entry.array, fields.count == 2, let id = fields[0].string,
                let position = StreamPosition(id), let values = fields[1].array
            else {
                throw FanfareError(.internalError, "unexpected history entry in \(channel)")
            }
            var predecessor: StreamPosition?
            var body: ByteBuffer?
            var isFinal = false
            for index in stride(from: 0, to: values.count - 1, by: 2) {
                switch values[index].string {
                case "p": predecessor = values[index + 1].string.flatMap { StreamPosition($0) }
                case "b": body = values[index + 1].bytes
                case "f": isFinal = true
                default: break
                }
            }
            guard let predecessor, let body else {
                throw FanfareError(.internalError, "a history entry of \(channel) lacks its fields")
            }
            events.append(
                BusEvent(channel: channel, position: position, predecessor: predecessor, body: body, isFinal: isFinal)
            )
        }
        return HistoryPage(status: pageStatus, head: head, events: events, isFinal: parts[3].int == 1)
    }
}
