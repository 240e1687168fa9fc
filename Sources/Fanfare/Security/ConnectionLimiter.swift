import Synchronization

/// Counts open streams per client id, per address and per node, and refuses one over a
/// bound. A stream holds its place from acceptance until its connection closes.
final class ConnectionLimiter: Sendable {
    private struct Counts {
        var clients: [String: Int] = [:]
        var addresses: [String: Int] = [:]
        var total = 0
    }

    enum Refusal: String, Sendable {
        case client = "connections_per_client"
        case address = "connections_per_ip"
        case node = "connections_per_node"
    }

    private let limits: LimitsConfiguration
    private let counts = Mutex(Counts())

    init(limits: LimitsConfiguration) {
        self.limits = limits
    }

    /// Takes a place for a stream, or says which bound it would cross.
    func acquire(clientID: String, address: String) -> Refusal? {
        self.counts.withLock { counts in
            let limits = self.limits
            if limits.connectionsPerNode > 0, counts.total >= limits.connectionsPerNode { return .node }
            if limits.connectionsPerIP > 0, counts.addresses[address, default: 0] >= limits.connectionsPerIP {
                return .address
            }
            if limits.connectionsPerClient > 0, counts.clients[clientID, default: 0] >= limits.connectionsPerClient {
                return .client
            }
            counts.total += 1
            counts.addresses[address, default: 0] += 1
            counts.clients[clientID, default: 0] += 1
            return nil
        }
    }

    func release(clientID: String, address: String) {
        self.counts.withLock { counts in
            counts.total -= 1
            Self.decrement(&counts.addresses, address)
            Self.decrement(&counts.clients, clientID)
        }
    }

    private static func decrement(_ map: inout [String: Int], _ key: String) {
        guard let value = map[key] else { return }
        if value <= 1 { map[key] = nil } else { map[key] = value - 1 }
    }
}
