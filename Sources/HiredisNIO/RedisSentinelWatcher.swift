public import Logging
public import NIOCore
import Synchronization

/// Listens to every sentinel for `+switch-master` and reports when the master moved.
///
/// A connection that finds the master through Sentinel reaches the new one only when it
/// connects again. A master that died drops its sockets, so that happens by itself; one
/// that is cut off from the sentinels but not from its clients keeps them, and would go
/// on taking writes nobody reads. The watcher closes that gap: its owner reconnects
/// (``RedisClient/reconnect(to:)``, ``RedisSubscriber/reconnect(to:)``) when it reports a switch.
///
/// One subscriber per sentinel, so a sentinel that is down does not hide a switch the
/// others announce; every sentinel announces it, and each new master is reported once.
public final class RedisSentinelWatcher: Sendable {
    /// The channel sentinels announce a failover on.
    public static let channel = "+switch-master"

    /// A `+switch-master` message: the master's name, then its old and new address.
    public struct Switch: Sendable, Equatable {
        public var masterName: String
        public var old: RedisAddress
        public var new: RedisAddress

        /// Reads `<master-name> <old-ip> <old-port> <new-ip> <new-port>`; `nil` for anything else.
        public init?(message: String) {
            let words = message.split(separator: " ")
            guard words.count == 5, let oldPort = Int(words[2]), let newPort = Int(words[4]) else { return nil }
            self.masterName = String(words[0])
            self.old = RedisAddress(host: String(words[1]), port: oldPort)
            self.new = RedisAddress(host: String(words[3]), port: newPort)
        }
    }

    private let subscribers: [RedisSubscriber]

    /// The last new master reported, shared by the subscribers' callbacks.
    private final class Reported: Sendable {
        let address = Mutex<RedisAddress?>(nil)
    }

    /// - Parameters:
    ///   - sentinel: the sentinels and the master's name.
    ///   - master: the master's configuration (its timeouts are the sentinels' too).
    ///   - eventLoop: owns the subscribers; `onSwitch` runs on it.
    ///   - logger: connection messages, and each switch (info).
    ///   - onSwitch: called with the new master's address, once per new master.
    public init(
        sentinel: RedisSentinel,
        master: RedisConfiguration,
        eventLoop: any EventLoop,
        logger: Logger,
        onSwitch: @escaping @Sendable (Switch) -> Void
    ) {
        let reported = Reported()
        let masterName = sentinel.masterName
        self.subscribers = sentinel.sentinels.map { address in
            RedisSubscriber(
                configuration: .init(redis: sentinel.configuration(of: address, from: master)),
                eventLoop: eventLoop,
                logger: logger
            ) { event in
                guard case .message(let channel, let payload) = event, channel == Self.channel,
                    let change = Switch(message: String(buffer: payload)), change.masterName == masterName
                else { return }
                let isNew = reported.address.withLock { last in
                    defer { last = change.new }
                    return last != change.new
                }
                guard isNew else { return }
                logger.info(
                    "redis.sentinel.switch-master",
                    metadata: [
                        "redis.master": "\(change.new)", "redis.master.old": "\(change.old)",
                        "redis.sentinel": "\(address)",
                    ]
                )
                onSwitch(change)
            }
        }
    }

    /// Connects to every sentinel and subscribes; returns at once (a sentinel that is down
    /// is subscribed to when it comes back).
    public func start() {
        for subscriber in self.subscribers {
            subscriber.start()
            // Wanted from now on, so subscribed on every (re)connect; the first confirmation
            // need not be awaited.
            _ = subscriber.subscribeFuture(.channel, [Self.channel])
        }
    }

    /// Closes every sentinel connection.
    public func close() async {
        for subscriber in self.subscribers { await subscriber.close() }
    }
}
