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

    @Test func refusesTLSClearly() {
        #expect {
            try RedisConfiguration(url: "rediss://h:6380")
        } throws: { error in
            (error as? RedisClientError)?.code == .unsupported
        }
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
        #expect(RedisConfiguration.redacted("redis://h:1/a@b") == "redis://h:1/a@b")
        #expect(RedisConfiguration.redacted("redis://h:1") == "redis://h:1")
    }
}
