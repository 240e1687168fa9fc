import Fanfare
import Foundation
import HiredisNIO
import Logging
import NIOCore
import NIOPosix
import ServerSentEvents
import Testing

/// TLS to Redis: a redis-server with TLS on a loopback port of its own, and certificates
/// this test makes with openssl (a CA, a server certificate for 127.0.0.1 it signs, a
/// client certificate it signs, and another CA that signs nothing here).
@Suite(.enabled(if: RedisServerProcess.enabled), .timeLimit(.minutes(3)))
struct RedisTLSIntegrationTests {
    /// The certificates, in a temporary directory of their own.
    struct Certificates {
        let directory: String
        var ca: String { self.directory + "/ca.pem" }
        var otherCA: String { self.directory + "/other-ca.pem" }
        var serverCertificate: String { self.directory + "/server.pem" }
        var serverKey: String { self.directory + "/server.key" }
        var clientCertificate: String { self.directory + "/client.pem" }
        var clientKey: String { self.directory + "/client.key" }

        static func make() async throws -> Certificates {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fanfare-rtls-\(UUID())").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let certificates = Certificates(directory: directory)
            let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
            for name in ["ca", "other-ca"] {
                try await Self.openssl(
                    ["req", "-x509"] + key + [
                        "-days", "1", "-subj", "/CN=fanfare-test-\(name)", "-keyout", "\(directory)/\(name).key",
                        "-out", "\(directory)/\(name).pem",
                    ]
                )
            }
            for (name, subject, extensions) in [
                ("server", "/CN=localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
                ("client", "/CN=fanfare-node", "extendedKeyUsage=clientAuth"),
            ] {
                try await Self.openssl(
                    ["req"] + key + [
                        "-subj", subject, "-keyout", "\(directory)/\(name).key", "-out", "\(directory)/\(name).csr",
                    ]
                )
                try Data((extensions + "\n").utf8).write(to: URL(fileURLWithPath: "\(directory)/\(name).ext"))
                try await Self.openssl([
                    "x509", "-req", "-in", "\(directory)/\(name).csr", "-CA", certificates.ca, "-CAkey",
                    "\(directory)/ca.key", "-CAcreateserial", "-days", "1", "-extfile", "\(directory)/\(name).ext",
                    "-out", "\(directory)/\(name).pem",
                ])
            }
            return certificates
        }

        private static func openssl(_ arguments: [String]) async throws {
            let pid = try RedisServerProcess.spawn(["/usr/bin/env", "openssl"] + arguments)
            let status = try await RedisServerProcess.waitForExit(pid, "openssl", within: .seconds(30))
            guard status == 0 else { throw TestFailure("openssl \(arguments.prefix(2)) exited with \(status)") }
        }

        func remove() {
            try? FileManager.default.removeItem(atPath: self.directory)
        }
    }

    /// A redis-server with TLS on `tlsPort` (its plain port is only for the readiness check);
    /// with `clientCertificates`, it refuses clients without a certificate the CA signed.
    static func server(
        _ certificates: Certificates,
        clientCertificates: Bool
    ) async throws -> (
        RedisServerProcess, tlsPort: Int
    ) {
        let tlsPort = try RedisServerProcess.freePort()
        let server = try await RedisServerProcess(arguments: [
            "--tls-port", "\(tlsPort)", "--tls-cert-file", certificates.serverCertificate, "--tls-key-file",
            certificates.serverKey, "--tls-ca-cert-file", certificates.ca, "--tls-auth-clients",
            clientCertificates ? "yes" : "no",
        ])
        return (server, tlsPort)
    }

    /// A sentinel watching `master` (at its TLS port) that speaks TLS on a port of its own and
    /// to the servers it watches.
    static func sentinel(
        _ certificates: Certificates,
        monitoring master: RedisServerProcess,
        masterPort: Int
    ) async throws -> (SentinelProcess, tlsPort: Int) {
        let tlsPort = try RedisServerProcess.freePort()
        let sentinel = try await SentinelProcess(
            monitoring: master,
            masterPort: masterPort,
            extraConfiguration: """
                tls-port \(tlsPort)
                tls-cert-file \(certificates.serverCertificate)
                tls-key-file \(certificates.serverKey)
                tls-ca-cert-file \(certificates.ca)
                tls-auth-clients no
                tls-replication yes
                """
        )
        return (sentinel, tlsPort)
    }

    static func configuration(port tlsPort: Int, tls: RedisTLSSettings) throws -> FanfareConfiguration {
        var configuration = FanfareConfiguration(
            host: "127.0.0.1",
            port: try RedisServerProcess.freePort(),
            redisURL: "rediss://127.0.0.1:\(tlsPort)",
            nodeID: "tls-node",
            registryInterval: .milliseconds(200),
            registryTTL: .seconds(2),
            eventLoops: 2
        )
        configuration.redisTLS = tls
        return configuration
    }

    /// With the CA and a client certificate, over TLS only: publish, stream, resume.
    @Test func aNodeOnATLSRedisPublishesStreamsAndResumes() async throws {
        let certificates = try await Certificates.make()
        defer { certificates.remove() }
        let (server, tlsPort) = try await Self.server(certificates, clientCertificates: true)
        defer { server.stop() }
        let node = try await RunningNode(
            configuration: try Self.configuration(
                port: tlsPort,
                tls: RedisTLSSettings(
                    caFile: certificates.ca,
                    certificateFile: certificates.clientCertificate,
                    keyFile: certificates.clientKey
                )
            )
        )
        let url = "http://127.0.0.1:\(node.address.port ?? 0)"
        let stream = try await TestStream(url + "/api/sse/subscribe/tls-reader?channels=secure")
        _ = try await stream.connected()
        func publish(_ index: Int) async throws {
            let response = try await TestHTTPClient.request(
                "POST",
                url + "/api/sse/notify",
                body: #"{"channel":"secure","event":"e","payload":\#(index)}"#
            )
            #expect(response.status == 200, "\(response.body)")
        }
        for index in 0..<5 { try await publish(index) }
        var lastID = ""
        for index in 0..<5 {
            let event = try await stream.next()
            #expect(event.data == "\(index)")
            lastID = event.id ?? ""
        }
        await stream.close()
        for index in 5..<10 { try await publish(index) }
        let resumed = try await TestStream(
            url + "/api/sse/subscribe/tls-reader?channels=secure",
            headers: [("Last-Event-ID", lastID)]
        )
        for index in 5..<10 { #expect(try await resumed.next().data == "\(index)") }
        await resumed.close()
        await node.shutdown()
    }

    /// Redis's certificate signed by a CA the node does not trust: the node does not start,
    /// and says why.
    @Test func aCertificateFromAnotherCAStopsTheNodeWithASentence() async throws {
        let certificates = try await Certificates.make()
        defer { certificates.remove() }
        let (server, tlsPort) = try await Self.server(certificates, clientCertificates: false)
        defer { server.stop() }
        let configuration = try Self.configuration(port: tlsPort, tls: RedisTLSSettings(caFile: certificates.otherCA))
        let node = try await FanfareNode(configuration: configuration, logger: RunningNode.logger)
        let error = try await withDeadline("the node to give up") { () -> FanfareError in
            do {
                try await node.run()
            } catch let error as FanfareError {
                return error
            }
            throw TestFailure("the node ran and stopped without an error")
        }
        #expect(
            error.message
                == "the node cannot start: TLS to rediss://127.0.0.1:\(tlsPort)/0 failed: "
                + "the server's certificate is not signed by a trusted CA (check the CA file)",
            "\(error)"
        )
    }

    /// `--redis-tls-insecure` connects without checking anything (and the node logs that).
    @Test func anInsecureConnectionWorksWithoutTheCA() async throws {
        let certificates = try await Certificates.make()
        defer { certificates.remove() }
        let (server, tlsPort) = try await Self.server(certificates, clientCertificates: false)
        defer { server.stop() }
        let node = try await RunningNode(
            configuration: try Self.configuration(port: tlsPort, tls: RedisTLSSettings(insecure: true))
        )
        let response = try await TestHTTPClient.request(
            "POST",
            "http://127.0.0.1:\(node.address.port ?? 0)/api/sse/notify",
            body: #"{"channel":"any","event":"e"}"#
        )
        #expect(response.status == 200, "\(response.body)")
        await node.shutdown()
    }

    /// `rediss-sentinel://`: the node asks a sentinel over TLS where the master is, and
    /// talks to the master over TLS; events flow.
    @Test func aNodeFindsItsMasterThroughASentinelOverTLS() async throws {
        let certificates = try await Certificates.make()
        defer { certificates.remove() }
        let (master, masterTLSPort) = try await Self.server(certificates, clientCertificates: false)
        defer { master.stop() }
        let (sentinel, sentinelTLSPort) = try await Self.sentinel(
            certificates,
            monitoring: master,
            masterPort: masterTLSPort
        )
        defer { sentinel.stop() }
        var configuration = try Self.configuration(port: masterTLSPort, tls: RedisTLSSettings(caFile: certificates.ca))
        configuration.redisURL = "rediss-sentinel://127.0.0.1:\(sentinelTLSPort)/fanfare"
        // The master has no replica here: publishes wait for none (with Sentinel the default is 1).
        configuration.replicaAcks = 0
        let node = try await RunningNode(configuration: configuration)
        let url = "http://127.0.0.1:\(node.address.port ?? 0)"
        let stream = try await TestStream(url + "/api/sse/subscribe/sentinel-reader?channels=secure")
        _ = try await stream.connected()
        let response = try await TestHTTPClient.request(
            "POST",
            url + "/api/sse/notify",
            body: #"{"channel":"secure","event":"e","payload":"through the sentinel"}"#
        )
        #expect(response.status == 200, "\(response.body)")
        #expect(try await stream.next().data == #""through the sentinel""#)
        await stream.close()
        await node.shutdown()
    }

    /// `rediss-cluster://`: the node learns the slots over TLS (Redis answers a TLS client
    /// with the TLS ports), talks TLS to every primary and subscribes on each; an event on
    /// a channel of every primary reaches its stream.
    @Test func aNodeOnATLSRedisClusterReachesEveryPrimary() async throws {
        let certificates = try await Certificates.make()
        defer { certificates.remove() }
        let cluster = try await ClusterTopology(primaries: 3, replicasPerPrimary: 0, tls: certificates)
        defer { cluster.stop() }
        var configuration = try Self.configuration(port: 0, tls: RedisTLSSettings(caFile: certificates.ca))
        configuration.redisURL = cluster.tlsURL
        // No replicas here: publishes wait for none (with a cluster the default is 1).
        configuration.replicaAcks = 0
        let node = try await RunningNode(configuration: configuration)
        let url = "http://127.0.0.1:\(node.address.port ?? 0)"
        let map = try await cluster.slotMap()
        let channels = try ClusterTopology.channels(onDistinctPrimariesOf: map, count: 3, prefix: "tls-shard-")
        let stream = try await TestStream(
            url + "/api/sse/subscribe/cluster-reader?channels=\(channels.joined(separator: ","))"
        )
        _ = try await stream.connected()
        for channel in channels {
            let response = try await TestHTTPClient.request(
                "POST",
                url + "/api/sse/notify",
                body: #"{"channel":"\#(channel)","event":"e","payload":"\#(channel)"}"#
            )
            #expect(response.status == 200, "\(response.body)")
            #expect(try await stream.next().data == "\"\(channel)\"")
        }
        await stream.close()
        await node.shutdown()
    }

    /// Runs `configuration`'s node to its end; the error it stopped with.
    private static func failure(_ configuration: FanfareConfiguration) async throws -> FanfareError {
        let node = try await FanfareNode(configuration: configuration, logger: RunningNode.logger)
        return try await withDeadline("the node to give up") { () -> FanfareError in
            do {
                try await node.run()
            } catch let error as FanfareError {
                return error
            }
            throw TestFailure("the node ran and stopped without an error")
        }
    }

    /// A Redis that asks for a client certificate and gets none: the node says so, not
    /// just that the connection closed (under TLS 1.3 the refusal comes after the handshake).
    @Test func aMissingClientCertificateIsNamed() async throws {
        let certificates = try await Certificates.make()
        defer { certificates.remove() }
        let (server, tlsPort) = try await Self.server(certificates, clientCertificates: true)
        defer { server.stop() }
        let error = try await Self.failure(
            try Self.configuration(port: tlsPort, tls: RedisTLSSettings(caFile: certificates.ca))
        )
        #expect(
            error.message
                == "the node cannot start: TLS to rediss://127.0.0.1:\(tlsPort)/0 failed: the server closed the "
                + "connection after the handshake (one that asks for a client certificate does so without an "
                + "accepted one)",
            "\(error)"
        )
    }

    /// The same sentence through a cluster's seeds as through one server, and an IP
    /// address as the server name is refused at start.
    @Test func aClusterOnAnotherCAIsNamedAndAnIPServerNameRefused() async throws {
        let certificates = try await Certificates.make()
        defer { certificates.remove() }
        let cluster = try await ClusterTopology(primaries: 3, replicasPerPrimary: 0, tls: certificates)
        defer { cluster.stop() }
        var configuration = try Self.configuration(port: 0, tls: RedisTLSSettings(caFile: certificates.otherCA))
        configuration.redisURL = cluster.tlsURL
        let error = try await Self.failure(configuration)
        #expect(error.message.hasPrefix("the node cannot start: TLS to rediss://127.0.0.1:"), "\(error)")
        #expect(
            error.message.hasSuffix("the server's certificate is not signed by a trusted CA (check the CA file)"),
            "\(error)"
        )
        configuration.redisTLS = RedisTLSSettings(caFile: certificates.ca, serverName: "127.0.0.1")
        let named = await #expect(throws: FanfareError.self) {
            _ = try await FanfareNode(configuration: configuration, logger: RunningNode.logger)
        }
        #expect(
            named?.message.hasPrefix("TLS to Redis: the server name must be a host name") == true,
            "\(String(describing: named))"
        )
    }

    /// `fanfare publish --redis rediss://…` takes the same TLS options as a node: with the
    /// CA the event is stored; with the other CA it fails with the sentence.
    @Test func publishThroughATLSRedisFromTheCLI() async throws {
        guard let executable = NodeProcess.executable else { throw TestFailure("fanfare is not built") }
        let certificates = try await Certificates.make()
        defer { certificates.remove() }
        let (server, tlsPort) = try await Self.server(certificates, clientCertificates: false)
        defer { server.stop() }
        // A node loads the publish function into Redis, as in any cluster.
        let node = try await RunningNode(
            configuration: try Self.configuration(port: tlsPort, tls: RedisTLSSettings(caFile: certificates.ca))
        )
        func publish(ca: String) async throws -> (code: Int32, output: String) {
            let log = certificates.directory + "/publish-\(UUID()).log"
            let pid = try RedisServerProcess.spawn(
                [
                    executable, "publish", "--redis", "rediss://127.0.0.1:\(tlsPort)", "--redis-tls-ca-file", ca,
                    "--channel", "cli-tls", "--event", "e", "--payload", "1",
                ],
                output: log
            )
            let code = try await RedisServerProcess.waitForExit(pid, "fanfare publish", within: .seconds(30))
            return (code, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
        }
        let stored = try await publish(ca: certificates.ca)
        #expect(stored.code == 0, "\(stored.output)")
        let refused = try await publish(ca: certificates.otherCA)
        #expect(refused.code != 0)
        #expect(refused.output.contains("the server's certificate is not signed by a trusted CA"), "\(refused.output)")
        // Over the plain port: the one event is in the channel's history.
        let connection = try await RedisConnection.connect(
            configuration: server.configuration,
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
            logger: Logger(label: "test")
        )
        #expect(try await connection.send("XLEN", "fanfare:h:{cli-tls}") == .integer(1))
        await connection.close()
        await node.shutdown()
    }
}
