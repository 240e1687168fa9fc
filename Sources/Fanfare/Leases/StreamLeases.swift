internal import NIOCore
import Synchronization

/// What happens to a stream that would take its user past `--max-connections-per-user`.
public enum UserLimitPolicy: String, Sendable, CaseIterable {
    /// The new stream is refused with 429.
    case refuse
    /// The user's oldest stream ends, after `__disconnect`, and the new one opens: with a
    /// limit of 1, the newest tab wins.
    case closeOldest = "close-oldest"
}

/// What a stream holds beyond its node: a place under its user's cluster-wide limit, and
/// its user's presence on its topics.
///
/// A class, and immutable: a stream keeps one reference (8 bytes of every stream, the many
/// without a user included), and the lease loop's queue shares it.
final class StreamLeases: Sendable {
    let user: String
    /// Names the stream's places in Redis: letters and digits, unique to the stream.
    let lease: String
    /// Its place under the user's limit, once it has one.
    let place: String?
    /// The channels whose presence the stream counts on.
    let presence: [String]

    init(user: String, lease: String = StreamLeases.newLease(), place: String? = nil, presence: [String] = []) {
        self.user = user
        self.lease = lease
        self.place = place
        self.presence = presence
    }

    /// The same leases with the place the cluster gave them.
    func placed(_ place: String) -> StreamLeases {
        StreamLeases(user: self.user, lease: self.lease, place: place, presence: self.presence)
    }

    /// A fresh lease name: 26 random letters and digits.
    static func newLease() -> String {
        (0..<2).map { _ in
            let text = String(UInt64.random(in: 0...UInt64.max), radix: 36)
            return String(repeating: "0", count: max(0, 13 - text.count)) + text
        }.joined()
    }
}

/// The answer to a stream's request for a place under its user's limit.
enum UserPlaceAnswer: Sendable, Equatable {
    /// The stream has its place; `ended` names the leases of the user's streams it
    /// replaced (`close-oldest`).
    case granted(place: String, ended: [String])
    /// The user has as many streams as the limit allows (`refuse`).
    case refused
}

/// A user on a channel's presence, with how many streams it has there.
struct PresenceUser: Sendable, Equatable {
    var user: String
    var streams: Int
}

/// The cluster's leases: per-user places and presence, kept in Redis for a cluster and in
/// memory for an embedded node.
///
/// A stream takes its place before it opens (``acquire(user:lease:limit:policy:on:)``);
/// once open it is ``opened(_:)`` and, when it closes, ``closed(_:)``. Those two only note
/// the change: ``run()`` applies the changes in order (so a user's join always comes
/// before its leave) and renews the node's leases, until the node stops.
protocol ClusterLeases: Sendable {
    func acquire(
        user: String,
        lease: String,
        limit: Int,
        policy: UserLimitPolicy,
        on eventLoop: any EventLoop
    ) async throws -> UserPlaceAnswer
    /// A stream that took its place did not open: the place goes back.
    func release(_ leases: StreamLeases)
    func opened(_ leases: StreamLeases)
    func closed(_ leases: StreamLeases)
    /// Who is on `channel`'s presence now.
    func users(on channel: String, on eventLoop: any EventLoop) async throws -> [PresenceUser]
    /// Applies the changes and renews the leases until the task is cancelled or the node
    /// shuts down gracefully (then it applies what is left and returns).
    func run() async
}

/// Changes waiting for ``ClusterLeases/run()``, in order, and the bell that wakes it.
///
/// Each stream adds at most two (opened, closed), so the list is bounded by the node's
/// streams.
final class LeaseChanges: Sendable {
    enum Change: Sendable {
        case opened(StreamLeases)
        case closed(StreamLeases)
        /// A place taken for a stream that did not open.
        case released(StreamLeases)
    }

    private let changes = Mutex<[Change]>([])
    let bell: AsyncStream<Void>
    private let ring: AsyncStream<Void>.Continuation

    init() {
        (self.bell, self.ring) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    func add(_ change: Change) {
        self.changes.withLock { $0.append(change) }
        self.ring.yield()
    }

    /// Every change so far, oldest first.
    func take() -> [Change] {
        self.changes.withLock { changes in
            defer { changes.removeAll(keepingCapacity: true) }
            return changes
        }
    }

    /// Wakes ``ClusterLeases/run()`` (its timer does, to renew).
    func wake() { self.ring.yield() }

    func finish() { self.ring.finish() }
}
