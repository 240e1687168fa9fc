import NIOCore
import NIOHTTP1
import Testing

@testable import Fanfare

/// Runs without I/O: where a run stream starts (or that it is over), how its machine ends
/// after the final event, a POST stream's body, and a disconnect request's message.
@Suite struct RunTests {
    private static func final(_ n: Int) -> BusEvent {
        var event = Events.event(n)
        event.isFinal = true
        return event
    }

    private static func page(head: Int, final: Bool, _ status: HistoryPage.Status = .ok) -> HistoryPage {
        HistoryPage(status: status, head: Events.position(head), events: [], isFinal: final)
    }

    @Test func aRunStartsAtTheCursorTheStartOrTheHeadAndIsOverOnceTheClientHasTheFinalEvent() {
        let cursor = RunStart(channel: "c", cursor: Events.position(4), fromStart: false)
        #expect(cursor.decide(Self.page(head: 9, final: false)) == .open(Events.position(4)))
        #expect(cursor.decide(Self.page(head: 9, final: true)) == .open(Events.position(4)))
        #expect(cursor.decide(Self.page(head: 4, final: true)) == .over)
        // A cursor past a finished run's head has nothing to wait for either.
        #expect(cursor.decide(Self.page(head: 3, final: true, .unknown)) == .over)
        // The cursor wins over from=start (a client coming back keeps both).
        let both = RunStart(channel: "c", cursor: Events.position(4), fromStart: true)
        #expect(both.decide(Self.page(head: 9, final: false)) == .open(Events.position(4)))

        let start = RunStart(channel: "c", cursor: nil, fromStart: true)
        #expect(start.decide(Self.page(head: 9, final: true)) == .open(.zero))
        #expect(start.decide(Self.page(head: 0, final: false)) == .open(.zero))

        let live = RunStart(channel: "c", cursor: nil, fromStart: false)
        #expect(live.decide(Self.page(head: 9, final: false)) == .open(Events.position(9)))
        #expect(live.decide(Self.page(head: 9, final: true)) == .over)

        // A resume into a run whose whole history expired: nothing it had will come. One whose
        // history started over after it is followed (and told of the gap).
        #expect(cursor.decide(Self.page(head: 0, final: false, .gone)) == .over)
        #expect(cursor.decide(Self.page(head: 9, final: false, .gone)) == .open(Events.position(4)))
        #expect(start.decide(Self.page(head: 0, final: false, .gone)) == .open(.zero))
    }

    @Test func aRunRequestIsCheckedBeforeAnythingIsRead() throws {
        func request(_ uri: String, lastEventID: String? = nil) -> HTTPRequest {
            var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: uri)
            if let lastEventID { head.headers.add(name: "Last-Event-ID", value: lastEventID) }
            return HTTPRequest(head: head)
        }
        let id = Cursor(positions: [Events.position(7)]).text(tags: [Cursor.tag("run-1")])
        let resumed = try RunStart(channel: "run-1", request: request("/?from=start", lastEventID: id), grant: nil)
        #expect(resumed == RunStart(channel: "run-1", cursor: Events.position(7), fromStart: true))
        // A cursor of other channels: as if there were none.
        let other = Cursor(positions: [Events.position(7)]).text(tags: [Cursor.tag("other")])
        #expect(try RunStart(channel: "run-1", request: request("/?lastEventId=\(other)"), grant: nil).cursor == nil)
        for (channel, uri) in [
            ("run-1", "/?from=end"), ("__probe", "/"), ("client:a", "/"), ("user:a", "/"), ("broadcast", "/"),
            ("run 1", "/"), ("run-1", "/?lastEventId=x"),
        ] {
            #expect(throws: FanfareError.self, "\(channel) \(uri)") {
                try RunStart(channel: channel, request: request(uri), grant: nil)
            }
        }
        let grant = Grant(userID: "u", patterns: ["runs.*"], expires: nil)
        #expect(try RunStart(channel: "runs.7", request: request("/"), grant: grant).channel == "runs.7")
        let refused = #expect(throws: FanfareError.self) {
            try RunStart(channel: "jobs.7", request: request("/"), grant: grant)
        }
        #expect(refused?.code == .forbidden)
    }

    /// A run stream ends right after its final event, live or replayed, and writes nothing
    /// after it; an ordinary stream goes on past one.
    @Test func aRunStreamEndsAfterTheFinalEventLiveOrReplayed() {
        var live = StreamStateMachine(
            channels: ["c"],
            resume: .none,
            replayCap: 100,
            bufferLimit: 8,
            endsAtFinal: true
        )
        _ = live.attached([Events.position(3)])
        guard case .write = live.live(Events.event(4), index: 0) else {
            Issue.record("4 follows 3")
            return
        }
        guard case .end = live.live(Self.final(5), index: 0) else {
            Issue.record("5 is final")
            return
        }
        guard case .none = live.live(Events.event(6), index: 0) else {
            Issue.record("nothing after the end")
            return
        }

        var replayed = StreamStateMachine(
            channels: ["c"],
            resume: .cursor([Cursor.tag("c"): .zero]),
            replayCap: 100,
            bufferLimit: 8,
            endsAtFinal: true
        )
        #expect(replayed.attached([Events.position(3)]).map(\.summary) == ["connected [0]", "read 0 after 0"])
        let page = HistoryPage(
            status: .ok,
            head: Events.position(3),
            events: [Events.event(1), Events.event(2), Self.final(3)],
            isFinal: true
        )
        #expect(
            replayed.read(page, index: 0).map(\.summary) == [
                "event 1 [1]", "event 2 [2]", "event 3 [3]", "end c",
            ]
        )

        var ordinary = StreamStateMachine(channels: ["c"], resume: .none, replayCap: 100, bufferLimit: 8)
        _ = ordinary.attached([Events.position(4)])
        guard case .write = ordinary.live(Self.final(5), index: 0) else {
            Issue.record("just an event")
            return
        }
        #expect(ordinary.isLive)
    }

    /// A run replays its whole retained history, past the replay cap: jumping to the head
    /// as an ordinary stream does would pass over the final event and never end.
    @Test func aRunStreamReplaysPastTheReplayCapToItsFinalEvent() {
        var run = StreamStateMachine(
            channels: ["c"],
            resume: .cursor([Cursor.tag("c"): .zero]),
            replayCap: 2,
            bufferLimit: 8,
            endsAtFinal: true
        )
        #expect(run.attached([Events.position(5)]).map(\.summary) == ["connected [0]", "read 0 after 0"])
        var first = Events.page(1...3, head: 5)
        first.isFinal = true
        #expect(
            run.read(first, index: 0).map(\.summary) == ["event 1 [1]", "event 2 [2]", "event 3 [3]", "read 0 after 3"]
        )
        let last = HistoryPage(
            status: .ok,
            head: Events.position(5),
            events: [Events.event(4), Self.final(5)],
            isFinal: true
        )
        #expect(run.read(last, index: 0).map(\.summary) == ["event 4 [4]", "event 5 [5]", "end c"])

        // The same history on an ordinary stream is capped: a reset, then the head.
        var ordinary = StreamStateMachine(
            channels: ["c"],
            resume: .cursor([Cursor.tag("c"): .zero]),
            replayCap: 2,
            bufferLimit: 8
        )
        _ = ordinary.attached([Events.position(5)])
        #expect(ordinary.read(first, index: 0).map(\.summary) == [#"reset ["c"] capped [5]"#])
    }

    @Test func onlyARunsChannelTakesAFinalEvent() throws {
        for target in [
            #""clientId":"a""#, #""userId":"a""#, #""broadcast":true"#, #""channel":"user:a""#,
            #""channel":"client:a""#, #""channel":"broadcast""#,
        ] {
            let error = #expect(throws: FanfareError.self, "\(target)") {
                try NotifyTarget(body: Array("{\(target),\"final\":true}".utf8))
            }
            #expect(error?.code == .invalidInput)
        }
        let run = try NotifyTarget(body: Array(#"{"channel":"runs.1","final":true,"event":"complete"}"#.utf8))
        #expect(run.request.isFinal && run.request.channel == "runs.1")
    }

    @Test func aPOSTBodyFillsTheQueryAndBadOnesAreRefused() throws {
        func post(_ body: String, type: String? = "application/json") -> HTTPRequest {
            var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/?channels=q&token=t0")
            if let type { head.headers.add(name: "Content-Type", value: type) }
            var request = HTTPRequest(head: head)
            request.body = Array(body.utf8)
            return request
        }
        var request = post(#"{"channels":["a","b"],"lastEventId":"x","userId":"u"}"#)
        try StreamRequestBody.merge(into: &request, route: .stream)
        #expect(request.query == ["channels": "a,b", "lastEventId": "x", "userId": "u", "token": "t0"])
        var text = post(#"{"channels":"a, b","token":"t1"}"#)
        try StreamRequestBody.merge(into: &text, route: .stream)
        #expect(text.query["channels"] == "a, b" && text.query["token"] == "t1")
        var empty = post("  ", type: nil)
        try StreamRequestBody.merge(into: &empty, route: .stream)
        #expect(empty.query == ["channels": "q", "token": "t0"])
        var run = post(#"{"from":"start","clientId":"c"}"#)
        try StreamRequestBody.merge(into: &run, route: .run)
        #expect(run.query["from"] == "start")

        for (body, route) in [
            (#"{"channels":["a"]}"#, StreamRequestBody.Route.run), (#"{"from":"start"}"#, .stream),
            (#"{"userId":1}"#, .stream), (#"{"channels":[1]}"#, .stream), (#"{"channels":["a,b"]}"#, .stream),
            ("[]", .stream), ("{", .stream), (#"{"token":null}"#, .stream),
        ] {
            var request = post(body)
            #expect(throws: FanfareError.self, "\(body)") { try StreamRequestBody.merge(into: &request, route: route) }
        }
        var form = post("channels=a", type: "application/x-www-form-urlencoded")
        #expect(throws: HTTPError.self) { try StreamRequestBody.merge(into: &form, route: .stream) }
    }

    @Test func aDisconnectMessageReadsBackAndEventsAreNotTakenForOne() {
        let request = DisconnectRequest(channel: "user:ann", reason: "logged out\nfor now", reconnect: true)
        #expect(request.id.allSatisfy { $0.isLetter || $0.isNumber } && !request.id.isEmpty)
        let message = ByteBuffer(string: "! \(request.id) 1\nlogged out\nfor now")
        #expect(DisconnectRequest.isRequest(message))
        #expect(DisconnectRequest(channel: "user:ann", message: message) == request)
        #expect(DisconnectRequest(channel: "c", message: ByteBuffer(string: "! id 2\nx")) == nil)
        let event = ByteBuffer(string: "1-0 0-0\ndata: x\n\n")
        #expect(!DisconnectRequest.isRequest(event))
        #expect(RedisEventBus.event(channel: "c", payload: event)?.isFinal == false)
        let final = RedisEventBus.event(channel: "c", payload: ByteBuffer(string: "2-0 1-0 f\ndata: x\n\n"))
        #expect(final?.isFinal == true)
        #expect(final?.predecessor == StreamPosition(milliseconds: 1, sequence: 0))
        #expect(final.map { String(buffer: $0.body) } == "data: x\n\n")
    }
}
