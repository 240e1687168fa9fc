import NIOCore
import NIOHTTP1
import Testing

@testable import Fanfare

/// The HTTP connection's life without a socket: bodies and their bounds, pipelined
/// requests answered in order, the queue's bound, parse errors behind queued requests,
/// the timers, and the hand-over to a stream.
@Suite struct HTTPConnectionStateMachineTests {
    private func machine(maxBody: Int = 100) -> HTTPConnectionStateMachine {
        HTTPConnectionStateMachine(maxBodyBytes: maxBody, maxURIBytes: 64)
    }

    private func head(_ uri: String = "/a", contentLength: Int? = nil) -> HTTPServerRequestPart {
        var headers = HTTPHeaders()
        if let contentLength { headers.add(name: "content-length", value: "\(contentLength)") }
        return .head(HTTPRequestHead(version: .http1_1, method: .POST, uri: uri, headers: headers))
    }

    private func body(_ text: String) -> HTTPServerRequestPart { .body(ByteBuffer(string: text)) }

    @Test func aRequestIsRoutedWithItsWholeBody() {
        var machine = self.machine()
        #expect(machine.read(self.head()).map(\.summary) == ["arm"])
        for piece in ["{\"a\":", "1", "}"] { #expect(machine.read(self.body(piece)).isEmpty) }
        #expect(machine.read(.end(nil)).map(\.summary) == ["cancel", "route /a {\"a\":1}"])
        #expect(machine.isResponding)
        #expect(machine.responded(keepAlive: true).map(\.summary) == ["arm"])
        #expect(machine.served == 1)
    }

    @Test func bodiesAndTargetsOverTheirBoundsAreRefused() {
        var declared = self.machine(maxBody: 10)
        #expect(declared.read(self.head(contentLength: 11)).map(\.summary) == ["refuse 413 bodySize"])
        var streamed = self.machine(maxBody: 10)
        _ = streamed.read(self.head())
        #expect(streamed.read(self.body("123456")).isEmpty)
        #expect(streamed.read(self.body("123456")).map(\.summary) == ["refuse 413 bodySize"])
        // The refusal is the connection's last answer: what follows waits, unread, for
        // the close.
        #expect(streamed.read(.end(nil)).map(\.summary) == ["reading off"])
        #expect(streamed.responded(keepAlive: false).isEmpty)
        #expect(streamed.read(self.head()).isEmpty)
        var long = self.machine()
        #expect(long.read(self.head("/" + String(repeating: "x", count: 64))).map(\.summary) == ["refuse 414 uriSize"])
    }

    @Test func pipelinedRequestsWaitAndAreAnsweredInOrder() {
        var machine = self.machine()
        _ = machine.read(self.head("/first"))
        _ = machine.read(.end(nil))
        // Behind an unanswered request: queued, reading stops once.
        #expect(machine.read(self.head("/second")).map(\.summary) == ["reading off"])
        #expect(machine.read(.end(nil)).isEmpty)
        #expect(machine.read(self.head("/third")).isEmpty)
        #expect(machine.read(.end(nil)).isEmpty)
        #expect(machine.responded(keepAlive: true).map(\.summary) == ["arm", "arm", "cancel", "route /second "])
        #expect(machine.responded(keepAlive: true).map(\.summary) == ["arm", "arm", "cancel", "route /third "])
        #expect(machine.responded(keepAlive: true).map(\.summary) == ["arm", "reading on"])
        #expect(machine.served == 3)
    }

    @Test func pastTheQueueBoundTheConnectionClosesAfterTheAnswers() {
        var machine = self.machine()
        _ = machine.read(self.head("/0"))
        _ = machine.read(.end(nil))
        for index in 1...HTTPConnectionStateMachine.maxQueuedRequests + 3 {
            _ = machine.read(self.head("/\(index)"))
            _ = machine.read(.end(nil))
        }
        var routed: [String] = []
        var last: [String] = []
        for _ in 0...HTTPConnectionStateMachine.maxQueuedRequests {
            last = machine.responded(keepAlive: true).map(\.summary)
            routed += last.filter { $0.hasPrefix("route") }
        }
        #expect(routed.count == HTTPConnectionStateMachine.maxQueuedRequests)
        #expect(last == ["arm", "close"])
    }

    @Test func aParseErrorBehindQueuedRequestsIsRefusedAfterThem() {
        var machine = self.machine()
        _ = machine.read(self.head("/first"))
        _ = machine.read(.end(nil))
        _ = machine.read(self.head("/second"))
        _ = machine.read(.end(nil))
        #expect(machine.parseFailed(HTTPError(.badRequest, "malformed HTTP request")).isEmpty)
        #expect(machine.responded(keepAlive: true).map(\.summary) == ["arm", "arm", "cancel", "route /second "])
        #expect(machine.responded(keepAlive: true).map(\.summary) == ["arm", "refuse 400 -"])
        // Alone, it is refused at once.
        var alone = self.machine()
        #expect(alone.parseFailed(HTTPError(.badRequest, "malformed HTTP request")).map(\.summary) == ["refuse 400 -"])
    }

    @Test func timersRefuseSlowRequestsAndCloseIdleConnectionsQuietly() {
        var fresh = self.machine()
        #expect(fresh.timerFired().map(\.summary) == ["refuse 408 headerTimeout"])
        var slowBody = self.machine()
        _ = slowBody.read(self.head())
        #expect(slowBody.timerFired().map(\.summary) == ["refuse 408 bodyTimeout"])
        var keptAlive = self.machine()
        _ = keptAlive.read(self.head())
        _ = keptAlive.read(.end(nil))
        _ = keptAlive.responded(keepAlive: true)
        #expect(keptAlive.timerFired().map(\.summary) == ["close"])
        // While answering, the timer has nothing to say.
        var answering = self.machine()
        _ = answering.read(self.head())
        _ = answering.read(.end(nil))
        #expect(answering.timerFired().isEmpty)
    }

    @Test func aStreamForgetsQueuedRequestsAndReadsAgain() {
        var machine = self.machine()
        _ = machine.read(self.head("/api/sse/subscribe/a"))
        _ = machine.read(.end(nil))
        _ = machine.read(self.head("/queued"))
        #expect(machine.becameStream().map(\.summary) == ["reading on"])
        // Bytes the client sends afterwards are not requests.
        #expect(machine.read(self.head("/later")).isEmpty)
        #expect(machine.responded(keepAlive: true).isEmpty)
        #expect(machine.closed().map(\.summary) == ["cancel"])
    }
}

extension HTTPConnectionStateMachine.Action {
    var summary: String {
        switch self {
        case .armTimer: "arm"
        case .cancelTimer: "cancel"
        case .route(let request): "route \(request.path) \(String(decoding: request.body, as: UTF8.self))"
        case .refuse(let error, let reason): "refuse \(error.status.code) \(reason.map { "\($0)" } ?? "-")"
        case .close: "close"
        case .setReading(let reading): reading ? "reading on" : "reading off"
        }
    }
}
