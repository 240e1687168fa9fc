import HiredisNIO
import Testing

@Suite struct RedisConfigurationTests {
    @Test func readsAFullURL() throws {
        let configuration = try RedisConfiguration(url: "redis://alice:p%40ss@cache.local:6380/3")
        #expect(configuration.host == "cache.local")
        #expect(configuration.port == 6380)
        #expect(configuration.username == "alice")
        #expect(configuration.password == "p@ss")
        #expect(configuration.database == 3)
    }

    @Test func appliesDefaults() throws {
        let configuration = try RedisConfiguration(url: "redis://")
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.port == 6379)
        #expect(configuration.username == nil)
        #expect(configuration.password == nil)
        #expect(configuration.database == 0)
    }

    @Test func readsPasswordOnlyForms() throws {
        #expect(try RedisConfiguration(url: "redis://:secret@h").password == "secret")
        #expect(try RedisConfiguration(url: "redis://:secret@h").username == nil)
        #expect(try RedisConfiguration(url: "redis://secret@h:1").password == "secret")
    }

    @Test func readsIPv6Hosts() throws {
        let configuration = try RedisConfiguration(url: "redis://[::1]:7000/2")
        #expect(configuration.host == "::1")
        #expect(configuration.port == 7000)
        #expect(configuration.database == 2)
    }

    @Test(arguments: ["http://h", "redis://h:0", "redis://h:70000", "redis://h:port", "redis://h/x", "redis://[::1"])
    func refusesBadURLs(_ url: String) {
        do {
            _ = try RedisConfiguration(url: url)
            Issue.record("accepted \(url)")
        } catch let error as RedisClientError {
            #expect(error.code == .invalidURL)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func readsTheTLSFormOfEachScheme() throws {
        let single = try RedisConfiguration(url: "rediss://:pw@h:6380/2")
        #expect(single.tls == RedisTLS())
        #expect(single.tls?.verifyCertificates == true)
        #expect(single.host == "h" && single.port == 6380 && single.database == 2 && single.password == "pw")
        #expect(single.description == "rediss://:***@h:6380/2")
        let sentinel = try RedisConfiguration(url: "rediss-sentinel://s1:26379,s2/mymaster")
        #expect(sentinel.tls != nil && sentinel.sentinel?.masterName == "mymaster")
        #expect(sentinel.description.hasPrefix("rediss-sentinel://"))
        let cluster = try RedisConfiguration(url: "rediss-cluster://a:7000,b:7001")
        #expect(cluster.tls != nil && cluster.clusterSeeds?.count == 2)
        #expect(cluster.description == "rediss-cluster://a:7000,b:7001")
        #expect(try RedisConfiguration(url: "redis://h").tls == nil)
        #expect(throws: RedisClientError.self) { try RedisConfiguration(url: "redisss://h") }
    }

    @Test func aTLSFileThatCannotBeReadIsAClearError() {
        let error = #expect(throws: RedisClientError.self) {
            try RedisTLS(caFile: "/nonexistent/ca.pem").check()
        }
        #expect(error?.message.contains("/nonexistent/ca.pem") == true)
        let half = #expect(throws: RedisClientError.self) {
            try RedisTLS(certificateFile: "/nonexistent/client.pem").check()
        }
        #expect(half?.message.contains("needs its key") == true)
    }

    @Test func hidesThePasswordInDescriptions() throws {
        let configuration = try RedisConfiguration(url: "redis://u:hunter2@h:1/4")
        #expect(configuration.description == "redis://u:***@h:1/4")
        #expect(!configuration.description.contains("hunter2"))
    }

    @Test(arguments: [
        "http://u:hunter2@h", "redis://u:hunter2@h:port", "redis://hunter2@h:70000", "redis://:hunter2@h/x",
        "redis://u:hunter2@[::1", "redis://u:hunter2@[::1]x", "u:hunter2@h",
    ])
    func aBadURLIsRefusedWithoutItsPassword(_ url: String) {
        do {
            _ = try RedisConfiguration(url: url)
            Issue.record("accepted \(url)")
        } catch let error as RedisClientError {
            #expect(error.code == .invalidURL)
            #expect(!"\(error)".contains("hunter2"), "\(error)")
            #expect("\(error)".contains("***"), "\(error)")
        } catch {
            Issue.record("unexpected \(error)")
        }
        #expect(
            RedisConfiguration.redacted(url).contains("***") && !RedisConfiguration.redacted(url).contains("hunter2")
        )
    }

    @Test func redactsOnlyTheCredentials() {
        #expect(RedisConfiguration.redacted("redis://u:p@h:1/2") == "redis://u:***@h:1/2")
        #expect(RedisConfiguration.redacted("redis://secret@h") == "redis://***@h")
        // An '@' after the host part means a raw '/', '?' or '#' in a password: hidden too.
        #expect(RedisConfiguration.redacted("redis://h:1/a@b") == "redis://h:***@b")
        #expect(RedisConfiguration.redacted("redis://h:1") == "redis://h:1")
    }

    /// A raw '/', '?' or '#' in a password would end the host part early: the rest would be
    /// taken for a path, a query or a fragment, and the node would connect elsewhere
    /// without a password (`redis://:6380#x@h` is 127.0.0.1:6380 with none). Refused, and
    /// the error repeats no part of the password.
    @Test(arguments: [
        "redis://:6380#x@h", "redis://:hunter2/x@h:1", "redis://u:hun?ter2@h", "redis://u:hunter2#@h/0",
        "redis-cluster://:pw/hunter2@h:1,h:2", "redis-sentinel://:hun?ter2@h:1/m",
        "redis-sentinel://:hun#ter2@h:1/m?sentinelPassword=x",
    ])
    func aPasswordWithARawDelimiterIsRefused(_ url: String) {
        do {
            let configuration = try RedisConfiguration(url: url)
            Issue.record("accepted \(RedisConfiguration.redacted(url)): \(configuration)")
        } catch let error as RedisClientError {
            #expect(error.code == .invalidURL)
            #expect("\(error)".contains("percent-encoded"), "\(error)")
            for secret in ["hunter2", "hun", "6380#x", "ter2"] {
                #expect(!"\(error)".contains(secret), "\(error)")
                #expect(!RedisConfiguration.redacted(url).contains(secret), "\(RedisConfiguration.redacted(url))")
            }
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func percentEncodedDelimitersAndSentinelQueryValuesAreRead() throws {
        let configuration = try RedisConfiguration(url: "redis://:a%2Fb%3Fc%23d@h:1")
        #expect(configuration.password == "a/b?c#d" && configuration.host == "h")
        let sentinel = try RedisConfiguration(url: "redis-sentinel://h:1/m?sentinelUsername=a@b&sentinelPassword=p@q")
        #expect(sentinel.sentinel?.username == "a@b" && sentinel.sentinel?.password == "p@q")
    }

    @Test func readsASwitchMasterAnnouncement() {
        let change = RedisSentinelWatcher.Switch(message: "fanfare 127.0.0.1 20001 ::1 20002")
        #expect(change?.masterName == "fanfare")
        #expect(change?.old == RedisAddress(host: "127.0.0.1", port: 20001))
        #expect(change?.new == RedisAddress(host: "::1", port: 20002))
        for message in ["", "fanfare 127.0.0.1 20001 127.0.0.1", "fanfare a b c d", "fanfare h 1 h 2 extra"] {
            #expect(RedisSentinelWatcher.Switch(message: message) == nil, "\(message)")
        }
    }

    @Test func readsASentinelURL() throws {
        let configuration = try RedisConfiguration(
            url: "redis-sentinel://:m%40ster@10.0.0.1:26380,[::1],sentinel.local/fan%2Dfare/2"
                + "?sentinelUsername=watcher&sentinelPassword=s3cret"
        )
        let sentinel = try #require(configuration.sentinel)
        #expect(
            sentinel.sentinels == [
                .init(host: "10.0.0.1", port: 26380), .init(host: "::1", port: 26379),
                .init(host: "sentinel.local", port: 26379),
            ]
        )
        #expect(sentinel.masterName == "fan-fare")
        #expect(sentinel.username == "watcher" && sentinel.password == "s3cret")
        // The credentials before the hosts, and the database, are the master's.
        #expect(configuration.password == "m@ster" && configuration.username == nil)
        #expect(configuration.database == 2)
        #expect(
            "\(configuration)" == "redis-sentinel://:***@10.0.0.1:26380,[::1]:26379,sentinel.local:26379/fan-fare/2"
        )
        #expect(try RedisConfiguration(url: "redis-sentinel://h/m").sentinel?.password == nil)
    }

    @Test(arguments: [
        "redis-sentinel://h:1", "redis-sentinel://h:1/", "redis-sentinel://h:1/m/x", "redis-sentinel://h:1/m/1/2",
        "redis-sentinel://h:1,h:bad/m", "redis-sentinel://h:1/m?password=x", "redis-sentinel://h:1,/m",
    ])
    func refusesBadSentinelURLs(_ url: String) {
        #expect(throws: RedisClientError.self) { _ = try RedisConfiguration(url: url) }
    }

    @Test func readsAClusterURL() throws {
        let configuration = try RedisConfiguration(url: "redis-cluster://app:pw%21@10.0.0.1:7000,[::1],node.local:7002")
        #expect(
            configuration.clusterSeeds == [
                .init(host: "10.0.0.1", port: 7000), .init(host: "::1", port: 6379),
                .init(host: "node.local", port: 7002),
            ]
        )
        #expect(configuration.username == "app" && configuration.password == "pw!")
        #expect(configuration.host == "10.0.0.1" && configuration.port == 7000)
        #expect("\(configuration)" == "redis-cluster://app:***@10.0.0.1:7000,[::1]:6379,node.local:7002")
        #expect(try RedisConfiguration(url: "redis-cluster://h:1/0").clusterSeeds?.count == 1)
        // One server of the cluster: the same credentials, no seeds.
        let server = configuration.server(.init(host: "10.0.0.9", port: 7005))
        #expect(server.clusterSeeds == nil && server.host == "10.0.0.9" && server.port == 7005)
        #expect(server.password == "pw!")
    }

    @Test(arguments: [
        "redis-cluster://h:1/2", "redis-cluster://h:1,,h:2", "redis-cluster://h:1?x=1", "redis-cluster://h:x",
    ])
    func refusesBadClusterURLs(_ url: String) {
        #expect(throws: RedisClientError.self) { _ = try RedisConfiguration(url: url) }
    }

    @Test func redactsSentinelCredentials() {
        let url = "redis-sentinel://u:hunter2@h:1/m?sentinelUsername=w&sentinelPassword=hunter3"
        #expect(
            RedisConfiguration.redacted(url) == "redis-sentinel://u:***@h:1/m?sentinelUsername=w&sentinelPassword=***"
        )
        do {
            _ = try RedisConfiguration(url: url + "&extra=1")
            Issue.record("accepted an unknown parameter")
        } catch {
            #expect(!"\(error)".contains("hunter"), "\(error)")
        }
    }
}
