internal import FanfareAPI
internal import NIOCore
internal import NIOHTTP1

extension FanfareHTTPHandler {
    /// `POST /api/sse/notify`: checks the credential, then the body, then the rate, and
    /// publishes one event; answers as soon as the bus has it.
    func notify(context: ChannelHandlerContext, request: HTTPRequest) {
        let node = self.node
        let address = self.clientAddress(context: context, request: request)
        // Publishes go out on this connection's loop, where its answer is written.
        let loop = context.eventLoop
        self.respondAsync(context: context, request: request) {
            // The credential first: a caller without one learns nothing about the body.
            let identity = try await node.authenticator.authorizePublish(request, address: address)
            if let type = request.headers.first(name: "content-type"),
                type.split(separator: ";").first?.trimmingWhitespace().lowercased() != "application/json"
            {
                throw HTTPError(.unsupportedMediaType, "send the body as Content-Type: application/json")
            }
            if JSONObjectReader.isArray(request.body) {
                return try await Self.publishBatch(
                    try NotifyTarget.batch(body: request.body),
                    node: node,
                    identity: identity,
                    on: loop
                )
            }
            let target = try NotifyTarget(body: request.body)
            guard node.publishLimiter.allow(identity) else {
                node.metrics.refused(.publishRate)
                throw FanfareError(.limitExceeded, "too many publishes for this credential; slow down")
            }
            func publish() async throws -> PublishResult {
                do {
                    return try await node.bus.publish(target.request, on: loop)
                } catch {
                    node.metrics.publishFailures.increment()
                    throw error
                }
            }
            // The cluster-wide count comes from the registry: known already (no task for
            // it), or read beside the publish.
            let channel = target.request.channel
            let result: PublishResult
            let connections: Int
            if let known = node.registry.knownConnections(on: channel) {
                result = try await publish()
                connections = known
            } else {
                async let read = (try? await node.registry.connections(on: channel)) ?? 0
                result = try await publish()
                connections = await read
            }
            if !result.duplicate { node.metrics.eventsPublished.increment() }
            let answer = NotifyAnswer(
                id: result.position.description,
                sent: result.sent,
                connections: connections,
                clientId: target.clientID,
                duplicate: result.duplicate ? true : nil
            )
            return .json(.ok, NotifyAnswerWriter.write(answer))
        }
    }

    /// A batch: every event published in order, pipelined on one connection. The answer is
    /// the array of their answers; when any failed, that event's error status with what
    /// became of each (a failure says, as for one event, whether it may have happened).
    private static func publishBatch(
        _ targets: [NotifyTarget],
        node: NodeContext,
        identity: String,
        on loop: any EventLoop
    ) async throws -> HTTPResponse {
        guard node.publishLimiter.allow(identity, count: targets.count) else {
            node.metrics.refused(.publishRate)
            if let burst = node.publishLimiter.burst, targets.count > burst {
                throw FanfareError(
                    .limitExceeded,
                    "a batch of \(targets.count) is more than this credential may publish at once (\(burst)); send smaller batches"
                )
            }
            throw FanfareError(.limitExceeded, "too many publishes for this credential; slow down")
        }
        // The cluster-wide counts come from the registry; they are read beside the publishes.
        var connections: [String: Int] = [:]
        var unknown: [String] = []
        for channel in Set(targets.map(\.request.channel)) {
            if let known = node.registry.knownConnections(on: channel) {
                connections[channel] = known
            } else {
                unknown.append(channel)
            }
        }
        let results: [Result<PublishResult, FanfareError>]
        if unknown.isEmpty {
            results = await node.bus.publish(batch: targets.map(\.request), on: loop)
        } else {
            async let counts = Self.connections(on: unknown, registry: node.registry)
            results = await node.bus.publish(batch: targets.map(\.request), on: loop)
            connections.merge(await counts) { $1 }
        }
        var answers: [NotifyAnswer] = []
        answers.reserveCapacity(targets.count)
        var failures: [(index: Int, error: FanfareError)] = []
        for (index, result) in results.enumerated() {
            switch result {
            case .success(let published):
                if !published.duplicate { node.metrics.eventsPublished.increment() }
                answers.append(
                    NotifyAnswer(
                        id: published.position.description,
                        sent: published.sent,
                        connections: connections[targets[index].request.channel] ?? 0,
                        clientId: targets[index].clientID,
                        duplicate: published.duplicate ? true : nil
                    )
                )
            case .failure(let error):
                node.metrics.publishFailures.increment()
                failures.append((index, error))
            }
        }
        guard let first = failures.first else {
            var body = ByteBuffer()
            body.writeStaticString("[")
            for (index, answer) in answers.enumerated() {
                if index > 0 { body.writeStaticString(",") }
                var one = NotifyAnswerWriter.write(answer)
                body.writeBuffer(&one)
            }
            body.writeStaticString("]")
            return .json(.ok, body)
        }
        var published = answers.makeIterator()
        var failed = failures.makeIterator()
        var next = failed.next()
        var items: [BatchErrorAnswer.Item] = []
        for index in targets.indices {
            if let failure = next, failure.index == index {
                items.append(.failed(ErrorAnswer(error: failure.error.message, code: Int(failure.error.status.code))))
                next = failed.next()
            } else if let answer = published.next() {
                items.append(.published(answer))
            }
        }
        let status = first.error.status
        let sentence =
            "\(failures.count) of \(targets.count) events were not published (the first, item \(first.index): "
            + "\(first.error.message)); the others were: see results"
        return .answer(status, BatchErrorAnswer(error: sentence, code: Int(status.code), results: items))
    }

    /// The registry's count of each channel (0 when it cannot say).
    private static func connections(on channels: [String], registry: any ClusterRegistry) async -> [String: Int] {
        var counts: [String: Int] = [:]
        for channel in channels { counts[channel] = (try? await registry.connections(on: channel)) ?? 0 }
        return counts
    }
}
