internal import NIOHTTP1

/// Where a run stream (`/api/sse/runs/{channel}`) starts, or that it has nothing to send.
///
/// A run starts at the client's position in the channel when its Last-Event-ID has one
/// (an exact resume), else at the beginning with `from=start` (the retained history
/// first), else at the channel's head as the node read it just now. Starting from that
/// read, not from wherever the node's subscription happens to be, means a final event
/// published between the read and the subscription is caught up, not missed.
///
/// A run is over for this client when the channel is finished and the client has its
/// final event, or asks for neither a resume nor the start, or resumes a run whose history
/// has expired as a whole: the answer is 204, which
/// tells `EventSource` to stop reconnecting.
struct RunStart: Sendable, Equatable {
    enum Decision: Sendable, Equatable {
        /// Open the stream at this position of the channel.
        case open(StreamPosition)
        /// Answer 204: nothing will come.
        case over
    }

    let channel: String
    /// The client's position in the channel, from its Last-Event-ID.
    let cursor: StreamPosition?
    let fromStart: Bool

    init(channel: String, cursor: StreamPosition?, fromStart: Bool) {
        self.channel = channel
        self.cursor = cursor
        self.fromStart = fromStart
    }

    /// The run's start as `request` asks for it (query, or body merged into the query;
    /// `Last-Event-ID` header over `lastEventId`): 400 for a bad channel, `from` or id,
    /// 403 for a channel the token does not grant.
    init(channel: String, request: HTTPRequest, grant: Grant?) throws {
        guard ChannelName.isValid(channel) else {
            throw FanfareError(.invalidInput, "invalid channel name: use 1-128 of A-Z a-z 0-9 _ . : @ -")
        }
        guard !ChannelName.isReserved(channel) else {
            throw FanfareError(.invalidInput, "channel names starting with __ are reserved for the nodes")
        }
        guard ChannelName.canEnd(channel) else {
            throw FanfareError(
                .forbidden,
                "client:, user: and broadcast channels are not runs; follow them on a stream"
            )
        }
        if let grant, !grant.allows(channel) {
            throw FanfareError(.forbidden, "the token does not grant the channel \(channel)")
        }
        let fromStart: Bool
        switch request.query["from"] {
        case nil, "": fromStart = false
        case "start": fromStart = true
        case let other?: throw FanfareError(.invalidInput, "from must be start, not \(other)")
        }
        var cursor: StreamPosition?
        let lastEventID = request.headers.first(name: "last-event-id") ?? request.query["lastEventId"]
        if let id = lastEventID, !id.isEmpty {
            guard let positions = Cursor.decode(id) else {
                throw FanfareError(.invalidInput, "the last event id is not one this cluster wrote")
            }
            cursor = positions[Cursor.tag(channel)]
        }
        self.init(channel: channel, cursor: cursor, fromStart: fromStart)
    }

    /// Where to open, given a read of the channel after ``cursor`` (or the beginning).
    func decide(_ page: HistoryPage) -> Decision {
        if let cursor {
            if page.isFinal, cursor >= page.head { return .over }
            // The run's whole history is gone (expired while idle): nothing it had will come.
            if page.status == .gone, page.head == .zero { return .over }
            return .open(cursor)
        }
        if self.fromStart { return .open(.zero) }
        return page.isFinal ? .over : .open(page.head)
    }
}
