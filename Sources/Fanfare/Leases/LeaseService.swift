internal import ServiceLifecycle

/// Runs the node's leases (``ClusterLeases/run()``) while the node runs: on with
/// `--max-connections-per-user` or `--presence`.
struct LeaseService: Service {
    let leases: any ClusterLeases

    func run() async throws {
        await self.leases.run()
    }
}
