internal import HiredisNIO
internal import NIOCore

/// Publishing: one call of the library per event (or per run of one channel's events),
/// on the caller's loop's connections, acknowledged by replicas when asked.
extension RedisEventBus {
    func publish(_ request: PublishRequest, on eventLoop: any EventLoop) async throws -> PublishResult {
        let lane = self.lane(on: eventLoop)
        let call = self.publishCall(request)
        let slot = self.slot(request.channel)
        var sent: (reply: RESPValue, acknowledged: RESPValue?)
        do {
            sent = try await self.send(call, slot: slot, on: lane)
            if sent.reply.isMissingFunction {
                // The library was lost, so nothing ran: load it and publish once more.
                try await self.ensureLibraryEverywhere(lane.replicated?.client ?? lane.client)
                sent = try await self.send(call, slot: slot, on: lane)
            }
        } catch let error as FanfareError {
            throw error
        } catch let error as RedisClientError where error.code == .notSent || error.code == .clientClosed {
            throw Self.notPublished(error)
        } catch {
            throw Self.outcomeUnknown(request, error)
        }
        let result = try self.publishResult(sent.reply)
        if let acknowledged = sent.acknowledged {
            try self.checkReplicas(acknowledged, idempotencyKey: request.idempotencyKey)
        }
        return result
    }

    /// The publish call; when replicas must confirm, on the lane's publishing connection
    /// with its group's WAIT behind it (which counts the replicas that have all that
    /// connection wrote so far).
    private func send(
        _ call: [RESPArgument],
        slot: Int,
        on lane: Lane
    ) async throws -> (reply: RESPValue, acknowledged: RESPValue?) {
        guard let replicated = lane.replicated else {
            return (try await lane.client.reply(to: "FCALL", arguments: call, slot: slot), nil)
        }
        let reply = await replicated.send([RedisClient.Command("FCALL", call, slot: slot)])
        return (try reply[0].result.get(), try reply[0].trailer?.get())
    }

    /// A publish the master has but not enough replicas do: it happened, yet a failover
    /// could lose it, so it is not acknowledged.
    private func checkReplicas(_ reply: RESPValue, idempotencyKey: String?) throws {
        let replicas = reply.int ?? 0
        guard replicas < self.replicaAcks.count else { return }
        let milliseconds = self.replicaAcks.timeout.nanoseconds / 1_000_000
        throw FanfareError(
            .outcomeUnknown,
            "the event was published, but only \(replicas) of \(self.replicaAcks.count) replicas confirmed it "
                + "within \(milliseconds) ms, so a failover could lose it: "
                + (idempotencyKey == nil
                    ? "publish with an idempotencyKey to retry safely"
                    : "retry with the same idempotencyKey")
        )
    }

    /// Every call goes out at once on the caller's connection (one write for the batch)
    /// and the replies are read in order. Consecutive events of one channel without an
    /// idempotency key go in one call of `<prefix>_publish_batch` (one slot, one read of
    /// the channel's head for all of them); the others in one `<prefix>_publish` each.
    func publish(
        batch requests: [PublishRequest],
        on eventLoop: any EventLoop
    ) async -> [Result<PublishResult, FanfareError>] {
        let lane = self.lane(on: eventLoop)
        let client = lane.replicated?.client ?? lane.client
        var spans: [Range<Int>] = []
        var calls: [RedisClient.Command] = []
        var start = 0
        while start < requests.count {
            var end = start + 1
            if requests[start].idempotencyKey == nil, !requests[start].isFinal {
                // A final event ends its call: it is the last of its channel's run.
                while end < requests.count, requests[end].idempotencyKey == nil,
                    requests[end].channel == requests[start].channel
                {
                    end += 1
                    if requests[end - 1].isFinal { break }
                }
            }
            spans.append(start..<end)
            calls.append(
                RedisClient.Command(
                    "FCALL",
                    end - start == 1 ? self.publishCall(requests[start]) : self.batchCall(requests[start..<end]),
                    slot: self.slot(requests[start].channel)
                )
            )
            start = end
        }
        var results = [Result<PublishResult, FanfareError>](
            repeating: .failure(FanfareError(.internalError, "no reply")),
            count: requests.count
        )
        var retry: [Int] = []
        // With replica acknowledgement, WAIT follows the calls on every primary they went to.
        let replies: [RedisClient.Reply]
        if let replicated = lane.replicated {
            replies = await replicated.send(calls)
        } else {
            replies = await client.replies(to: calls)
        }
        for (span, reply) in zip(spans, replies) {
            switch reply.result {
            case .success(let reply) where reply.isMissingFunction:
                retry += span
            case .success(let reply) where span.count == 1:
                results[span.lowerBound] = Result { try self.publishResult(reply) }
                    .mapError(Self.fanfareError)
            case .success(let reply):
                do {
                    let published = try self.batchResult(reply, count: span.count)
                    for (index, result) in zip(span, published) { results[index] = .success(result) }
                } catch {
                    for index in span { results[index] = .failure(Self.fanfareError(error)) }
                }
            case .failure(let error as RedisClientError) where error.code == .notSent:
                for index in span { results[index] = .failure(Self.notPublished(error)) }
            case .failure(let error):
                for index in span { results[index] = .failure(Self.outcomeUnknown(requests[index], error)) }
            }
            if let acknowledged = reply.trailer {
                for index in span {
                    guard case .success = results[index] else { continue }
                    do {
                        try self.checkReplicas(try acknowledged.get(), idempotencyKey: requests[index].idempotencyKey)
                    } catch {
                        results[index] = .failure(
                            error as? FanfareError ?? Self.outcomeUnknown(requests[index], error)
                        )
                    }
                }
            }
        }
        if !retry.isEmpty {
            // The library was lost before these ran: load it and publish them once more.
            do {
                try await self.ensureLibraryEverywhere(client)
                for index in retry {
                    do {
                        results[index] = .success(try await self.publish(requests[index], on: eventLoop))
                    } catch {
                        results[index] = .failure(Self.fanfareError(error))
                    }
                }
            } catch {
                let refused = Self.notPublished(error)
                for index in retry { results[index] = .failure(refused) }
            }
        }
        return results
    }

    /// `<prefix>_publish_batch` of events of one channel, none with an idempotency key.
    private func batchCall(_ requests: ArraySlice<PublishRequest>) -> [RESPArgument] {
        var call = [RESPArgument]()
        call.reserveCapacity(3 + 2 * requests.count)
        call += [
            RESPArgument(self.names.function("publish_batch")), RESPArgument(1),
            RESPArgument(self.names.history(requests[requests.startIndex].channel)),
        ]
        for request in requests { call += [RESPArgument(request.event), RESPArgument(request.data)] }
        if requests.last?.isFinal == true { call.append(RESPArgument("final")) }
        return call
    }

    /// `<prefix>_publish_batch`'s reply, `{nodes, position, position, ...}`: a result per event.
    private func batchResult(_ reply: RESPValue, count: Int) throws -> [PublishResult] {
        if case .error(let message) = reply { throw Self.refusal(message) }
        guard let items = reply.array, items.count == count + 1, let nodes = items[0].int else {
            throw FanfareError(
                .internalError,
                "unexpected reply from \(self.names.function("publish_batch")): \(reply)"
            )
        }
        return try items.dropFirst().map { item in
            guard let text = item.string, let position = StreamPosition(text) else {
                throw FanfareError(
                    .internalError,
                    "unexpected position from \(self.names.function("publish_batch")): \(item)"
                )
            }
            return PublishResult(position: position, sent: nodes > 0, duplicate: false)
        }
    }

    /// No connection to send the publish on: it did not happen.
    private static func notPublished(_ error: any Error) -> FanfareError {
        FanfareError(.unavailable, "Redis is unavailable; the event was not published", underlying: error)
    }

    /// Why a publish function refused to run (it published nothing).
    private static func refusal(_ message: String) -> FanfareError {
        if message.hasPrefix("ERR fanfare: finished: ") {
            return FanfareError(.conflict, String(message.dropFirst("ERR fanfare: finished: ".count)))
        }
        if message.hasPrefix("ERR fanfare: ") {
            return FanfareError(.invalidInput, String(message.dropFirst("ERR fanfare: ".count)))
        }
        return FanfareError(
            .unavailable,
            "Redis refused the publish; the event was not published",
            underlying: RedisClientError(.serverError, message)
        )
    }

    private static func fanfareError(_ error: any Error) -> FanfareError {
        error as? FanfareError ?? FanfareError(.internalError, "the publish failed", underlying: error)
    }

    private func publishCall(_ request: PublishRequest) -> [RESPArgument] {
        var call = [RESPArgument(self.names.function("publish"))]
        call.reserveCapacity(6)
        if let key = request.idempotencyKey {
            call += [
                RESPArgument(2), RESPArgument(self.names.history(request.channel)),
                RESPArgument(self.names.idempotency(request.channel, key: key)),
            ]
        } else {
            call += [RESPArgument(1), RESPArgument(self.names.history(request.channel))]
        }
        call += [RESPArgument(request.event), RESPArgument(request.data)]
        if request.isFinal { call.append(RESPArgument("final")) }
        return call
    }

    /// The command went out and no answer came back: Redis may have run it.
    private static func outcomeUnknown(_ request: PublishRequest, _ error: any Error) -> FanfareError {
        FanfareError(
            .outcomeUnknown,
            request.idempotencyKey == nil
                ? "Redis did not confirm the publish; the event may have been published (publish with an idempotencyKey to retry safely)"
                : "Redis did not confirm the publish; the event may have been published: retry with the same idempotencyKey",
            underlying: error
        )
    }

    /// The publish function's reply: its result, or why it ran nothing.
    private func publishResult(_ reply: RESPValue) throws -> PublishResult {
        if case .error(let message) = reply { throw Self.refusal(message) }
        guard let items = reply.array, items.count == 3, let id = items[0].string,
            let position = StreamPosition(id), let nodes = items[1].int, let duplicate = items[2].int
        else {
            throw FanfareError(.internalError, "unexpected reply from \(self.names.function("publish")): \(reply)")
        }
        return PublishResult(position: position, sent: nodes > 0, duplicate: duplicate == 1)
    }
}
