import ArgumentParser

@main
struct FanfareCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fanfare",
        abstract: "Fanfare: a multi-node Server-Sent Events fan-out cluster.",
        subcommands: [DemoCommand.self]
    )
}
