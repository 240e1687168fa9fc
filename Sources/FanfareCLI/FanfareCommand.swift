import ArgumentParser
import Foundation

@main
struct FanfareCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fanfare",
        abstract: "Fanfare: a multi-node Server-Sent Events fan-out cluster.",
        subcommands: [
            ServeCommand.self, PublishCommand.self, ClusterCommand.self, TailCommand.self, TokenCommand.self,
        ]
    )
}

/// A flag's value, else the environment variable's, else the default.
func setting(_ flag: String?, _ variable: String, default value: String? = nil) -> String? {
    if let flag { return flag }
    if let environment = ProcessInfo.processInfo.environment[variable], !environment.isEmpty { return environment }
    return value
}

/// A secret from its flag, its variable, or a file named by `<variable>_FILE` (or the
/// `--…-file` flag). Files are read whole, with a trailing newline dropped.
func secret(_ flag: String?, file flagFile: String?, _ variable: String) throws -> String? {
    if let value = setting(flag, variable) { return value }
    guard let path = setting(flagFile, variable + "_FILE") else { return nil }
    do {
        var text = try String(contentsOfFile: path, encoding: .utf8)
        while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
        return text
    } catch {
        throw ValidationError("cannot read \(variable) from \(path): \(error.localizedDescription)")
    }
}

/// `Authorization: Bearer <key>` when a key is given.
func bearer(_ key: String?) -> [(String, String)] {
    key.map { [("Authorization", "Bearer \($0)")] } ?? []
}
