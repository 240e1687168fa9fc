internal import FanfareAPI
internal import NIOCore
internal import NIOHTTP1

extension FanfareHTTPHandler {
    /// `POST /api/sse/notify`: checks the credential, then the body, then the rate, and
    /// publishes one event; answers as soon as the bus has it.
    func notify(context: ChannelHandlerContext, request: HTTPRequest) {
        let node = self.node
        let address = self.clientAddress(context: context, request: request)
        self.respondAsync(context: context, request: request) {
            // The credential first: a caller without one learns nothing about the body.
            let identity = try await node.authenticator.authorizePublish(request, address: address)
            if let type = request.headers.first(name: "content-type"),
                type.split(separator: ";").first?.trimmingWhitespace().lowercased() != "application/json"
            {
                throw HTTPError(.unsupportedMediaType, "send the body as Content-Type: application/json")
            }
            let target = try NotifyTarget(body: request.body)
            guard node.publishLimiter.allow(identity) else {
                node.metrics.refused(.publishRate)
                throw FanfareError(.limitExceeded, "too many publishes for this credential; slow down")
            }
            // The cluster-wide count comes from the registry; it is read beside the publish.
            async let connections = node.registry.connections(on: target.request.channel)
            let result: PublishResult
            do {
                result = try await node.bus.publish(target.request)
            } catch {
                node.metrics.publishFailures.increment()
                throw error
            }
            if !result.duplicate { node.metrics.eventsPublished.increment() }
            let answer = NotifyAnswer(
                id: result.position.description,
                sent: result.sent,
                connections: (try? await connections) ?? 0,
                clientId: target.clientID,
                duplicate: result.duplicate ? true : nil
            )
            return .json(.ok, NotifyAnswerWriter.write(answer))
        }
    }
}
