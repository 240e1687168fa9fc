import ArgumentParser

/// A command whose options may come from the environment.
protocol EnvironmentConfigurable: ParsableCommand {
    static var environment: [EnvironmentOption] { get }
}
