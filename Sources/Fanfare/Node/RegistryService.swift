internal import NIOCore
internal import ServiceLifecycle

/// The node's registry row as a service: once the node listens, the row is refreshed
/// every interval (so a node that dies drops out when its TTL passes); on graceful
/// shutdown, after the streams were drained, the row is removed at once.
struct RegistryService: Service {
    let registry: any ClusterRegistry
    let interval: Duration
    let listening: AsyncSignal<SocketAddress>

    func run() async throws {
        do {
            // Shut down before the node listened: there is no row to write or remove.
            _ = try await cancelWhenGracefulShutdown { try await self.listening.wait() }
        } catch {
            // The server did not start: it throws the reason; wait for the group to go down
            // rather than finish first and hide it.
            if !Task.isShuttingDownGracefully { try? await gracefulShutdown() }
            return
        }
        let registry = self.registry
        let interval = self.interval
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await registry.refresh()
                try? await Task.sleep(for: interval)
            }
        }
        // Shutting down: leave now rather than when the row's TTL passes. (When the whole
        // group is cancelled instead, the call gives up at once and the TTL does it.)
        await registry.leave()
    }
}
