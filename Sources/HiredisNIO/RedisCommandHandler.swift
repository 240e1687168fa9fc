internal import NIOCore

/// Matches replies to commands in order on one connection (pipelining).
///
/// Loop-confined. Each written ``Request`` queues its promise and its bytes; the
/// first write in a loop tick schedules one flush at the end of that tick, so a burst
/// of commands goes out in as few syscalls as possible. One timer watches the oldest
/// command; if its reply is late every pending command fails and the channel closes.
/// When the channel closes, every pending command fails at once.
final class RedisCommandHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = RESPValue
    typealias OutboundIn = Request
    typealias OutboundOut = ByteBuffer

    /// An encoded command and the promise its reply completes.
    struct Request {
        var encoded: ByteBuffer
        var promise: EventLoopPromise<RESPValue>
    }

    private struct Pending {
        var promise: EventLoopPromise<RESPValue>
        var deadline: NIODeadline
    }

    private enum State {
        case open
        case failed(RedisClientError)
    }

    private var pending = CircularBuffer<Pending>(initialCapacity: 32)
    private var state = State.open
    private var flushScheduled = false
    private var timer: Scheduled<Void>?
    private let commandTimeout: TimeAmount?

    init(commandTimeout: TimeAmount?) {
        self.commandTimeout = commandTimeout
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = Self.unwrapOutboundIn(data)
        if case .failed(let error) = self.state {
            request.promise.fail(error)
            promise?.fail(error)
            return
        }
        let deadline = self.commandTimeout.map { context.eventLoop.now + $0 } ?? .distantFuture
        self.pending.append(Pending(promise: request.promise, deadline: deadline))
        context.write(Self.wrapOutboundOut(request.encoded), promise: promise)
        self.armTimer(context: context)
        if !self.flushScheduled {
            self.flushScheduled = true
            context.eventLoop.assumeIsolated().execute {
                self.flushScheduled = false
                context.flush()
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let value = Self.unwrapInboundIn(data)
        guard let head = self.pending.popFirst() else {
            self.fail(RedisClientError(.protocolError, "reply without a command: \(value)"), context: context)
            return
        }
        head.promise.succeed(value)
        if case .error(let message) = value, message.hasPrefix("READONLY") {
            // The server became a replica (a failover): this connection can never write
            // again, and closing it makes its owner connect anew, to the new master.
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.failAll(RedisClientError(.connectionClosed, "the connection to Redis closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let wrapped =
            (error as? RedisClientError)
            ?? RedisClientError(.connectionClosed, "the connection to Redis failed", underlying: error)
        self.fail(wrapped, context: context)
        context.fireErrorCaught(error)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
    }

    private func fail(_ error: RedisClientError, context: ChannelHandlerContext) {
        self.failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: RedisClientError) {
        if case .open = self.state { self.state = .failed(error) }
        self.timer?.cancel()
        self.timer = nil
        while let head = self.pending.popFirst() {
            head.promise.fail(error)
        }
    }

    /// Keeps one timer armed for the oldest command's deadline.
    private func armTimer(context: ChannelHandlerContext) {
        guard self.timer == nil, let head = self.pending.first, head.deadline != .distantFuture else { return }
        self.timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: head.deadline) {
            self.timer = nil
            guard let head = self.pending.first else { return }
            if head.deadline <= context.eventLoop.now {
                self.fail(RedisClientError(.commandTimeout, "Redis did not answer in time"), context: context)
            } else {
                self.armTimer(context: context)
            }
        }
    }
}

@available(*, unavailable)
extension RedisCommandHandler: Sendable {}
