internal import NIOCore
internal import NIOHTTP1

/// One HTTP/1.1 connection's life: requests read one at a time, answered in the order
/// they came (pipelining), with bounded bodies and a timer for slow headers and bodies,
/// until it closes or becomes a stream. Pure: its methods return what the handler
/// (``FanfareHTTPHandler``) does.
///
/// Parts that arrive while a request is being answered wait in a queue (reading stops
/// meanwhile) and are handled once it is; past ``maxQueuedRequests`` the rest is dropped
/// and the connection closes after the answers (a pipelining client retries what was not
/// answered). A request that cannot be parsed behind queued ones is refused after them.
struct HTTPConnectionStateMachine {
    enum Phase {
        /// Waiting for a request's headers; `served` answers sent so far.
        case idle
        case receiving(HTTPRequest)
        /// A request is being answered (routes may answer asynchronously).
        case responding
        /// The connection became a stream; an ``SSEStreamHandler`` serves it now.
        case streaming
        case closed
    }

    /// What the handler does, in order.
    enum Action {
        /// (Re)starts the wait for the next request's headers, or for its body.
        case armTimer
        case cancelTimer
        /// Answer the request; the machine is `responding` until ``responded(keepAlive:)``.
        case route(HTTPRequest)
        /// Answer with this error and close (the request cannot be read to the end).
        case refuse(HTTPError, NodeMetrics.Refusal?)
        /// Close without an answer (an idle keep-alive connection, or after the answers
        /// when the queue overflowed).
        case close
        /// Stop or resume reading from the socket.
        case setReading(Bool)
    }

    static let maxQueuedRequests = 16

    private(set) var phase = Phase.idle
    /// Answers sent on this connection so far.
    private(set) var served = 0
    private let maxBodyBytes: Int
    private let maxURIBytes: Int
    private var queued = CircularBuffer<HTTPServerRequestPart>()
    private var queuedRequests = 0
    private var queueOverflowed = false
    /// A request that could not be parsed, refused once those before it are answered.
    private var parseError: HTTPError?
    private var readingPaused = false

    init(maxBodyBytes: Int, maxURIBytes: Int) {
        self.maxBodyBytes = maxBodyBytes
        self.maxURIBytes = maxURIBytes
    }

    var isResponding: Bool {
        if case .responding = self.phase { return true }
        return false
    }

    // MARK: Input

    /// A part of a request was read.
    mutating func read(_ part: HTTPServerRequestPart) -> [Action] {
        if self.isResponding || !self.queued.isEmpty {
            return self.enqueue(part)
        }
        return self.handle(part)
    }

    /// The request could not be parsed (`refusal` says why).
    mutating func parseFailed(_ refusal: HTTPError) -> [Action] {
        switch self.phase {
        case .idle where self.queued.isEmpty:
            return self.refuse(refusal, nil)
        case .idle, .responding:
            // Pipelined after requests not answered yet: those are answered first (in
            // order), then this one is refused and the connection closes.
            self.parseError = refusal
            return self.setReading(false)
        case .receiving, .streaming, .closed:
            return [.close]
        }
    }

    /// The header (or body) timer fired.
    mutating func timerFired() -> [Action] {
        switch self.phase {
        case .receiving:
            // A body that does not come holds its socket and buffer: refused like slow headers.
            return self.refuse(HTTPError(.requestTimeout, "the request body took too long"), .bodyTimeout)
        case .idle where self.served > 0:
            // An idle keep-alive connection: close quietly (an unasked-for response could be
            // read by a proxy as the answer to its next request).
            self.phase = .closed
            return [.close]
        case .idle:
            return self.refuse(HTTPError(.requestTimeout, "the request headers took too long"), .headerTimeout)
        case .responding, .streaming, .closed:
            return []
        }
    }

    // MARK: Answers

    /// An answer was written. With keep-alive the connection waits for the next request,
    /// taking queued ones first; otherwise it closes once the answer is out.
    mutating func responded(keepAlive: Bool) -> [Action] {
        guard self.isResponding else { return [] }
        self.served += 1
        guard keepAlive else {
            self.phase = .closed
            return []
        }
        self.phase = .idle
        return [.armTimer] + self.answerQueued()
    }

    /// The connection became a stream: queued requests are forgotten, reading resumes.
    mutating func becameStream() -> [Action] {
        self.phase = .streaming
        self.queued.removeAll()
        self.queuedRequests = 0
        self.queueOverflowed = false
        return self.setReading(true)
    }

    mutating func closed() -> [Action] {
        self.phase = .closed
        return [.cancelTimer]
    }

    // MARK: Internals

    private mutating func handle(_ part: HTTPServerRequestPart) -> [Action] {
        switch (part, self.phase) {
        case (.head(let head), .idle):
            if head.uri.utf8.count > self.maxURIBytes {
                return self.refuse(HTTPError(.uriTooLong, "the request target is too long"), .uriSize)
            }
            let declared = head.headers.first(name: "content-length").flatMap { Int($0) } ?? 0
            if declared > self.maxBodyBytes {
                return self.refuse(HTTPError(.payloadTooLarge, "the body is larger than allowed"), .bodySize)
            }
            self.phase = .receiving(HTTPRequest(head: head))
            // The body gets a timer of its own, from the end of the headers.
            return [.armTimer]
        case (.body(var chunk), .receiving(var request)):
            // Out of the phase while it grows, so the body is appended in place, not copied.
            self.phase = .responding
            if request.body.count + chunk.readableBytes > self.maxBodyBytes {
                return self.refuse(HTTPError(.payloadTooLarge, "the body is larger than allowed"), .bodySize)
            }
            chunk.withUnsafeReadableBytes { request.body.append(contentsOf: $0) }
            chunk.moveReaderIndex(forwardBy: chunk.readableBytes)
            self.phase = .receiving(request)
            return []
        case (.end, .receiving(let request)):
            self.phase = .responding
            return [.cancelTimer, .route(request)]
        default:
            return []  // anything after a stream started, or after a refusal, is ignored
        }
    }

    private mutating func enqueue(_ part: HTTPServerRequestPart) -> [Action] {
        guard !self.queueOverflowed else { return [] }
        if case .head = part {
            guard self.queuedRequests < Self.maxQueuedRequests else {
                self.queueOverflowed = true
                return []
            }
            self.queuedRequests += 1
        }
        let wasEmpty = self.queued.isEmpty
        self.queued.append(part)
        return wasEmpty ? self.setReading(false) : []
    }

    /// Handles queued parts until one request is being answered (its `route` is the last
    /// action) or none is left.
    private mutating func answerQueued() -> [Action] {
        var actions: [Action] = []
        while let part = self.queued.first {
            switch self.phase {
            case .idle, .receiving: break
            case .responding, .streaming, .closed: return actions
            }
            self.queued.removeFirst()
            if case .head = part { self.queuedRequests -= 1 }
            actions += self.handle(part)
        }
        // The last queued request is being answered: reading resumes after its answer.
        if self.isResponding { return actions }
        if case .idle = self.phase, let error = self.parseError {
            self.parseError = nil
            actions += self.refuse(error, nil)
        } else if case .idle = self.phase, self.queueOverflowed {
            self.phase = .closed
            actions.append(.close)
        } else if !self.queueOverflowed, self.parseError == nil {
            // The rest of a queued request (its body, its end) may still be unread.
            actions += self.setReading(true)
        }
        return actions
    }

    private mutating func refuse(_ error: HTTPError, _ reason: NodeMetrics.Refusal?) -> [Action] {
        self.phase = .responding
        return [.refuse(error, reason)]
    }

    private mutating func setReading(_ reading: Bool) -> [Action] {
        guard self.readingPaused == reading else { return [] }
        self.readingPaused = !reading
        return [.setReading(reading)]
    }
}
