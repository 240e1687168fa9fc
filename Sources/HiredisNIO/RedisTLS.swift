internal import NIOCore
internal import NIOSSL
internal import NIOTLS
import Synchronization

/// TLS to Redis (`rediss://`, or any topology with TLS turned on): every connection — to a
/// server, a sentinel, a master Sentinel names, a cluster's primaries — speaks TLS with
/// these settings.
///
/// The server's certificate is checked by default: against `caFile` (or the system's roots
/// without one), for `serverName`, or else the host connected to (a name, or an IP address
/// the certificate must list). `verifyCertificates = false` turns every check off, which
/// anyone between the node and Redis can exploit; the node says so when it starts.
public struct RedisTLS: Sendable, Hashable {
    /// PEM file of the certificate authorities to trust; `nil`: the system's.
    public var caFile: String?
    /// PEM files of the client's certificate and key, for servers that ask for one
    /// (`tls-auth-clients yes`): mutual TLS.
    public var certificateFile: String?
    public var keyFile: String?
    /// The name the server's certificate must carry (and the SNI sent); `nil`: the host
    /// connected to.
    public var serverName: String?
    public var verifyCertificates: Bool

    public init(
        caFile: String? = nil,
        certificateFile: String? = nil,
        keyFile: String? = nil,
        serverName: String? = nil,
        verifyCertificates: Bool = true
    ) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.serverName = serverName
        self.verifyCertificates = verifyCertificates
    }

    /// Loads the files and makes the context now, so a missing or unreadable file is an
    /// error at start rather than at the first connection.
    public func check() throws {
        try self.checkServerName()
        _ = try self.context()
    }

    private static let contexts = Mutex<[RedisTLS: NIOSSLContext]>([:])

    /// The context for these settings, made once (it reads the files) and shared for the
    /// life of the process: a rotated certificate or CA is read at the next start.
    func context() throws -> NIOSSLContext {
        if let context = Self.contexts.withLock({ $0[self] }) { return context }
        guard (self.certificateFile == nil) == (self.keyFile == nil) else {
            throw RedisClientError(
                .invalidURL,
                "TLS to Redis: a client certificate needs its key, and a key its certificate"
            )
        }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = self.verifyCertificates ? .fullVerification : .none
        do {
            if let caFile = self.caFile {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            }
            if let certificateFile = self.certificateFile, let keyFile = self.keyFile {
                configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateFile).map {
                    .certificate($0)
                }
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
            }
            let context = try NIOSSLContext(configuration: configuration)
            Self.contexts.withLock { $0[self] = context }
            return context
        } catch {
            throw RedisClientError(
                .invalidURL,
                "TLS to Redis: cannot read the CA, certificate or key file (\(self.files))",
                underlying: error
            )
        }
    }

    private var files: String {
        [("CA", self.caFile), ("certificate", self.certificateFile), ("key", self.keyFile)]
            .compactMap { name, path in path.map { "\(name) \($0)" } }.joined(separator: ", ")
    }

    /// Puts the TLS handler first in `channel`'s pipeline (before it is active), for a
    /// connection to `host`; ``handshake(on:)`` then tells when it is done, within `timeout`.
    func addHandlers(to channel: any Channel, host: String, timeout: TimeAmount) throws {
        let name = self.serverName ?? (Self.isIPAddress(host) ? nil : host)
        let handler = try NIOSSLClientHandler(context: self.context(), serverHostname: name)
        let waiter = TLSHandshakeWaiter(promise: channel.eventLoop.makePromise(), timeout: timeout)
        try channel.pipeline.syncOperations.addHandlers([handler, waiter], position: .first)
    }

    /// Completes once the TLS handshake of a channel set up by ``addHandlers(to:host:timeout:)``
    /// is done, or fails with a sentence naming what went wrong. Call on the channel's loop.
    static func handshake(on channel: any Channel) -> EventLoopFuture<Void> {
        do {
            return try channel.pipeline.syncOperations.handler(type: TLSHandshakeWaiter.self).promise.futureResult
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
    }

    /// Refuses a server name no certificate check can use (an IP address is checked by
    /// connecting to it, against the certificate's IP entries).
    func checkServerName() throws {
        guard let name = self.serverName else { return }
        guard !name.isEmpty, !Self.isIPAddress(name) else {
            throw RedisClientError(
                .invalidURL,
                "TLS to Redis: the server name must be a host name, not '\(name)' (an IP address in the URL is checked as it is)"
            )
        }
    }

    static func isIPAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }
}

/// Completes its promise when the TLS handshake before it in the pipeline is done, fails
/// it with the handshake's error, or with a timeout; then passes everything on.
final class TLSHandshakeWaiter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let promise: EventLoopPromise<Void>
    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?
    private var done = false

    init(promise: EventLoopPromise<Void>, timeout: TimeAmount) {
        self.promise = promise
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { self.startTimer(context: context) }
    }

    /// The connect has its own timeout: the handshake's starts once the socket is connected.
    func channelActive(context: ChannelHandlerContext) {
        self.startTimer(context: context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // Never connected, or taken out: the promise is not left for ever.
        self.finish(.failure(RedisClientError(.connectionClosed, "the connection closed before the TLS handshake")))
    }

    private func startTimer(context: ChannelHandlerContext) {
        guard self.timer == nil, !self.done else { return }
        self.timer = context.eventLoop.assumeIsolated().scheduleTask(in: self.timeout) {
            self.finish(
                .failure(RedisClientError(.connectTimeout, "the TLS handshake took longer than \(self.timeout)"))
            )
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            self.finish(.success(()))
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.finish(.failure(Self.explained(error)))
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.finish(
            .failure(RedisClientError(.connectionClosed, "the server closed the connection during the TLS handshake"))
        )
        context.fireChannelInactive()
    }

    private func finish(_ result: Result<Void, any Error>) {
        guard !self.done else { return }
        self.done = true
        self.timer?.cancel()
        self.timer = nil
        self.promise.completeWith(result)
    }

    /// The handshake's error as a sentence: most often the certificate.
    private static func explained(_ error: any Error) -> RedisClientError {
        let text = "\(error)"
        let reason: String
        if text.contains("CERTIFICATE_VERIFY_FAILED") || text.contains("certificate verify failed") {
            reason = "the server's certificate is not signed by a trusted CA (check the CA file)"
        } else if let extra = error as? NIOSSLExtraError, extra == .failedToValidateHostname {
            reason = "the server's certificate does not name the host (set the server name)"
        } else {
            reason = "the TLS handshake failed"
        }
        return RedisClientError(.connectionClosed, reason, underlying: error)
    }
}

@available(*, unavailable)
extension TLSHandshakeWaiter: Sendable {}
