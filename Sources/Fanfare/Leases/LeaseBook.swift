/// This node's leases, as its lease loop applied the streams' changes, and what each batch
/// of changes asks of Redis. Pure: ``RedisLeases`` performs the actions.
struct LeaseBook: Sendable {
    /// A stream's place under its user's limit.
    struct Place: Sendable, Hashable {
        var user: String
        var place: String
    }

    /// A stream's lease on a channel's presence.
    struct Presence: Sendable, Hashable {
        var user: String
        var lease: String
    }

    /// What one batch of changes asks of Redis. Per channel the entries go before the
    /// leaves: a lease enters and leaves at most once, so its order holds.
    struct Actions: Sendable, Equatable {
        var releases: [Place] = []
        var enters: [String: [Presence]] = [:]
        var leaves: [String: [Presence]] = [:]

        var isEmpty: Bool { self.releases.isEmpty && self.enters.isEmpty && self.leaves.isEmpty }
    }

    /// Places per user, renewed every interval.
    private(set) var places: [String: Set<String>] = [:]
    /// Per presence channel: lease → user, renewed every interval.
    private(set) var presence: [String: [String: String]] = [:]

    mutating func apply(_ changes: [LeaseChanges.Change]) -> Actions {
        var actions = Actions()
        for change in changes {
            switch change {
            case .opened(let leases):
                if let place = leases.place { self.places[leases.user, default: []].insert(place) }
                for channel in leases.presence {
                    self.presence[channel, default: [:]][leases.lease] = leases.user
                    actions.enters[channel, default: []].append(Presence(user: leases.user, lease: leases.lease))
                }
            case .closed(let leases), .released(let leases):
                if let place = leases.place {
                    self.forget(Place(user: leases.user, place: place))
                    actions.releases.append(Place(user: leases.user, place: place))
                }
                // A stream that never opened never entered.
                guard case .closed = change else { continue }
                for channel in leases.presence {
                    self.presence[channel, default: [:]][leases.lease] = nil
                    if self.presence[channel]?.isEmpty == true { self.presence[channel] = nil }
                    actions.leaves[channel, default: []].append(Presence(user: leases.user, lease: leases.lease))
                }
            }
        }
        return actions
    }

    /// A place Redis no longer has (a newer stream took it, or it lapsed): not renewed again.
    mutating func forget(_ place: Place) {
        self.places[place.user, default: []].remove(place.place)
        if self.places[place.user]?.isEmpty == true { self.places[place.user] = nil }
    }

    /// The lease named by a place (`<opened> <lease>`).
    static func lease(of place: String) -> String? {
        place.split(separator: " ").last.map(String.init)
    }
}
