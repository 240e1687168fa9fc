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

    /// Parses the command line, with each subcommand's environment variables added
    /// (``EnvironmentArguments``), and runs it.
    static func main() async {
        var arguments = Array(CommandLine.arguments.dropFirst())
        var used: [String] = []
        do {
            let subcommand = Self.configuration.subcommands.first {
                $0.configuration.commandName == arguments.first
            }
            if let command = subcommand as? any EnvironmentConfigurable.Type {
                (arguments, used) = try EnvironmentArguments.merge(
                    arguments,
                    options: command.environment,
                    environment: ProcessInfo.processInfo.environment
                )
            }
            var command = try Self.parseAsRoot(arguments)
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            // Which settings came from the environment, when one of them may be the cause.
            if !used.isEmpty, !Self.exitCode(for: error).isSuccess, !(error is ExitCode) {
                FileHandle.standardError.write(
                    Data("(settings from the environment: \(used.joined(separator: ", ")))\n".utf8)
                )
            }
            Self.exit(withError: error)
        }
    }
}

/// `Authorization: Bearer <key>` when a key is given.
func bearer(_ key: String?) -> [(name: String, value: String)] {
    key.map { [(name: "Authorization", value: "Bearer \($0)")] } ?? []
}
