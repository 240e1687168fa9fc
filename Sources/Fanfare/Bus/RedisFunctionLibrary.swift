internal import HiredisNIO
internal import Logging

/// The function library, and how a node makes sure a server has it.
struct RedisFunctionLibrary: Sendable {
    let source: String
    let names: RedisNames
    let policy: HistoryPolicy
    let logger: Logger

    /// Loads the library when Redis has none (or an older one). A library of the same
    /// version with another history policy is the cluster's: it stays, and the node says
    /// so, since replacing it would change every other node's history.
    func ensure(on connection: RedisConnection) async throws {
        let source = self.source
        let reply: RESPValue
        do {
            reply = try await connection.send("FCALL", RESPArgument(self.names.function("policy")), 0)
        } catch let error as RedisClientError
            where error.code == .serverError && error.message.lowercased().contains("unknown command")
        {
            // Functions came with Redis 7.0: say so, instead of failing on FUNCTION LOAD.
            let version = try? await Self.serverVersion(connection)
            throw FanfareError(
                .invalidConfiguration,
                "Redis \(version ?? "(version unknown)") has no functions (FCALL): Fanfare needs Redis 7.0 or newer",
                underlying: error
            )
        } catch let error as RedisClientError where error.code == .serverError {
            // No library (Redis started empty): load ours. Another node may just have.
            do {
                _ = try await connection.send("FUNCTION", "LOAD", RESPArgument(source))
            } catch let error as RedisClientError
                where error.code == .serverError && error.message.contains("already exists")
            {}
            return
        }
        let parts = reply.array ?? []
        let version = parts.first?.int ?? 0
        let loaded = parts.count > 1 ? parts[1].string ?? "" : ""
        if version < Int64(RedisFunctions.version) {
            _ = try await connection.send("FUNCTION", "LOAD", "REPLACE", RESPArgument(source))
            self.logger.notice(
                "fanfare.library.upgraded",
                metadata: ["from": "\(version)", "to": "\(RedisFunctions.version)"]
            )
        } else if loaded != self.policy.description {
            self.logger.warning(
                "fanfare.history.policy.differs",
                metadata: [
                    "configured": "\(self.policy)", "cluster": "\(loaded)",
                    "effect": "publishes keep the cluster's policy; set the same history settings on every node",
                ]
            )
        }
    }

    /// The server's `redis_version`, from `INFO server`.
    private static func serverVersion(_ connection: RedisConnection) async throws -> String? {
        let info = try await connection.send("INFO", "server").string ?? ""
        return info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("redis_version:") }
            .map { String($0.dropFirst("redis_version:".count)) }
    }
}
