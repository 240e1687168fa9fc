/// The client id and channels of a stream request, worked out from the request's id,
/// `userId` and `channels` and checked against the subscriber's grant (when tokens are on).
///
/// Every stream is on `client:<id>`, on `user:<id>` when it has a user, on each topic it
/// asked for (trimmed, duplicates dropped) and on `broadcast`.
struct StreamChannels: Sendable, Equatable {
    var clientID: String
    var channels: [String]
    /// The stream's user (the token's subject when there is a grant), if it has one.
    var userID: String? = nil

    /// - Parameters:
    ///   - requested: the client id from the path or `?clientId=`; a random `anon-<n>`
    ///     when `nil`.
    ///   - userID: the `userId` parameter; ignored when there is a grant (the token's
    ///     subject is the user then).
    ///   - topics: the `channels` parameter, comma-separated.
    ///   - maximumTopics: the most topics a stream may ask for (a grant does not widen it).
    ///   - presence: whether the node keeps presence (`--presence`): without it a
    ///     `presence:<channel>` topic is refused, since nothing would ever come on it.
    init(
        requested: String?,
        userID: String?,
        topics requestedTopics: String?,
        grant: Grant?,
        maximumTopics: Int = 64,
        presence: Bool = true
    ) throws {
        if let requested {
            guard ChannelName.isValidID(requested) else { throw FanfareError(.invalidInput, "invalid client id") }
            if let grant, !grant.allows(ChannelName.client(requested)) {
                throw FanfareError(.forbidden, "the token does not grant client:\(requested)")
            }
        }
        let clientID = requested ?? "anon-\(UInt64.random(in: 0...UInt64.max) % 1_000_000_000_000)"
        var channels = [ChannelName.client(clientID)]
        let user = grant != nil ? grant?.userID : userID
        if let user, !user.isEmpty {
            guard ChannelName.isValidID(user) else { throw FanfareError(.invalidInput, "invalid userId") }
            channels.append(ChannelName.user(user))
        }
        var topics = 0
        for topic in (requestedTopics ?? "").split(separator: ",") {
            let name = topic.trimmingWhitespace()
            guard !name.isEmpty else { continue }
            guard ChannelName.isValid(name) else {
                throw FanfareError(.invalidInput, "invalid channel name: use 1-128 of A-Z a-z 0-9 _ . : @ -")
            }
            guard !ChannelName.isReserved(name) else {
                throw FanfareError(.invalidInput, "channel names starting with __ are reserved for the nodes")
            }
            guard !name.hasPrefix("client:"), !name.hasPrefix("user:") else {
                throw FanfareError(.forbidden, "client: and user: channels are joined through ids, not topics")
            }
            if ChannelName.presenceOf(name) != nil, !presence {
                throw FanfareError(.invalidInput, "\(name): this node keeps no presence (start it with --presence)")
            }
            if let grant, !grant.allows(name) {
                throw FanfareError(.forbidden, "the token does not grant the channel \(name)")
            }
            if !channels.contains(name) {
                channels.append(name)
                topics += 1
                guard topics <= maximumTopics else {
                    throw FanfareError(
                        .limitExceeded,
                        "a stream may ask for at most \(maximumTopics) channels (--max-channels-per-stream)"
                    )
                }
            }
        }
        if !channels.contains(ChannelName.broadcast) { channels.append(ChannelName.broadcast) }
        self.clientID = clientID
        self.channels = channels
        self.userID = user.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The channels whose presence the stream counts on: its topics, when it has a user.
    var presenceChannels: [String] {
        guard self.userID != nil else { return [] }
        return self.channels.filter(ChannelName.hasPresence)
    }
}

extension StreamChannels {
    /// A run stream: the run's one channel (checked as a topic is, ``RunStart`` did), under
    /// the requested client id or a random `anon-<n>`.
    init(run channel: String, requested: String?, grant: Grant?) throws {
        if let requested {
            guard ChannelName.isValidID(requested) else { throw FanfareError(.invalidInput, "invalid client id") }
            if let grant, !grant.allows(ChannelName.client(requested)) {
                throw FanfareError(.forbidden, "the token does not grant client:\(requested)")
            }
        }
        self.clientID = requested ?? "anon-\(UInt64.random(in: 0...UInt64.max) % 1_000_000_000_000)"
        self.channels = [channel]
    }
}
