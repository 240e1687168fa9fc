import ArgumentParser
import Foundation

@main
struct FanfareCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fanfare",
        abstract: "Fanfare: a multi-node Server-Sent Events fan-out cluster.",
        subcommands: [ServeCommand.self, PublishCommand.self, ClusterCommand.self, TailCommand.self]
    )
}

/// A flag's value, else the environment variable's, else the default.
func setting(_ flag: String?, _ variable: String, default value: String? = nil) -> String? {
    if let flag { return flag }
    if let environment = ProcessInfo.processInfo.environment[variable], !environment.isEmpty { return environment }
    return value
}
