internal import FanfareAPI
internal import NIOCore
internal import NIOHTTP1

extension FanfareHTTPHandler {
    /// `/readyz`: ready unless draining or (in a cluster) without Redis or a proven delivery
    /// path, why not, and the access mode.
    func readiness() -> ReadinessAnswer {
        let authenticator = self.node.authenticator
        let reason = self.node.notReadyReason
        return ReadinessAnswer(
            ready: reason == nil,
            reason: reason,
            delivery: self.node.health.delivery.rawValue,
            node: self.node.identity.id,
            mode: self.node.isEmbedded ? "embedded" : "cluster",
            draining: self.node.isDraining,
            auth: authenticator.security.isAnonymous ? "anonymous" : "on",
            access: authenticator.access,
            replicas: self.replicas()
        )
    }

    private func replicas() -> ReadinessAnswer.Replicas? {
        let health = self.node.health
        let wanted = health.replicasWanted
        guard wanted > 0 else { return nil }
        let found = health.replicasFound
        return ReadinessAnswer.Replicas(
            wanted: wanted,
            found: found,
            effect: ReplicaCheck.effect(
                wanted: wanted,
                found: found,
                timeoutMilliseconds: Int(self.node.configuration.replicaAckTimeout.nanoseconds / 1_000_000)
            )
        )
    }

    /// `/metrics`: this node's Prometheus text.
    func prometheus() -> HTTPResponse {
        let totals = self.node.hub.totals.values
        let text = self.node.metrics.render(
            connections: totals.connections,
            clients: totals.clients,
            channels: totals.channels,
            ready: self.node.isReady,
            deliveryStalled: self.node.health.delivery == .stalled
        )
        var response = HTTPResponse(status: .ok, body: ByteBuffer(bytes: text))
        response.headers.replaceOrAdd(name: "Content-Type", value: "text/plain; version=0.0.4; charset=utf-8")
        return response
    }

    /// `/api/sse/metrics`: cluster-wide counts from the registry.
    static func clusterMetrics(_ node: NodeContext) async throws -> HTTPResponse {
        let snapshot = try await node.registry.snapshot()
        let now = WallClock.milliseconds()
        let total = snapshot.totalConnections
        let clients = snapshot.clients.count
        let nodes = snapshot.nodes.map { row in
            NodeAnswer(
                nodeId: row.id,
                address: row.address,
                version: row.version,
                startedAt: row.startedAt,
                uptimeSeconds: max(0, (now - row.startedAt) / 1000),
                connections: row.connections,
                clients: row.clients,
                lastSeen: row.lastSeen,
                delivering: row.delivering,
                published: row.published,
                delivered: row.delivered
            )
        }
        let metrics = node.metrics
        let answer = ClusterMetricsAnswer(
            totalConnections: total,
            totalClients: clients,
            averageConnectionsPerClient: clients == 0 ? 0 : (Double(total) / Double(clients) * 100).rounded() / 100,
            nodes: nodes,
            thisNode: NodeCountersAnswer(
                nodeId: node.identity.id,
                eventsPublished: metrics.eventsPublished.current,
                publishFailures: metrics.publishFailures.current,
                deliveries: metrics.deliveries.current,
                eventsReplayed: metrics.eventsReplayed.current,
                resetsSent: metrics.resetsSent.current,
                slowConsumerCloses: metrics.slowConsumerCloses.current,
                redisReconnects: metrics.redisReconnects.current
            )
        )
        return .answer(.ok, answer)
    }

    /// `/api/sse/clients`: every connected client id, cluster-wide.
    static func clients(_ node: NodeContext) async throws -> HTTPResponse {
        let snapshot = try await node.registry.snapshot()
        let clients = snapshot.clients.sorted { $0.key < $1.key }.map {
            ClientsAnswer.Client(clientId: $0.key, connections: $0.value)
        }
        return .answer(.ok, ClientsAnswer(clients: clients))
    }

    /// `/api/sse/clients/{id}`: one client's connections per node.
    static func presence(_ node: NodeContext, channel: String, on loop: any EventLoop) async throws -> HTTPResponse {
        guard node.configuration.presence else {
            throw FanfareError(.notFound, "this node keeps no presence (start it with --presence)")
        }
        guard ChannelName.isValid(channel), ChannelName.hasPresence(channel) else {
            throw FanfareError(
                .invalidInput,
                "invalid channel: a topic has presence (not client:, user:, presence:, broadcast or __ channels)"
            )
        }
        let users = try await node.leases.users(on: channel, on: loop)
        let answer = PresenceAnswer(
            channel: channel,
            users: users.map { PresenceAnswer.User(userId: $0.user, streams: $0.streams) }
        )
        return .answer(.ok, answer)
    }

    static func client(_ node: NodeContext, id: String) async throws -> HTTPResponse {
        guard ChannelName.isValidID(id) else { throw FanfareError(.invalidInput, "invalid client id") }
        let rows = try await node.registry.client(id)
        guard !rows.isEmpty else { throw FanfareError(.notFound, "client \(id) is not connected") }
        let answer = ClientAnswer(
            clientId: id,
            nodes: rows.map { ClientAnswer.Node(nodeId: $0.node, connections: $0.connections) }
        )
        return .answer(.ok, answer)
    }
}
