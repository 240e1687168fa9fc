/// Adds the environment's settings to a command line, once for every command.
enum EnvironmentArguments {
    /// `arguments` (subcommand first) with every option of `options` that the command line
    /// does not give taken from `environment`, and the names of the variables used.
    static func merge(
        _ arguments: [String],
        options: [EnvironmentOption],
        environment: [String: String]
    ) throws -> (arguments: [String], used: [String]) {
        // `--name=value` in one argument: a value may start with `-` (a negative number, a
        // secret) and must not be read as an option.
        var added: [String] = []
        var used: [String] = []
        for option in options {
            let names = option.kind == .secret ? [option.name, option.name + "-file"] : [option.name]
            guard !names.contains(where: { Self.given($0, in: arguments) }) else { continue }
            let value = environment[option.variable].flatMap { $0.isEmpty ? nil : $0 }
            switch option.kind {
            case .value:
                guard let value else { continue }
                added.append("--\(option.name)=\(value)")
                used.append(option.variable)
            case .flag:
                guard let value else { continue }
                switch value.lowercased() {
                case "1", "true", "yes", "on":
                    added.append("--\(option.name)")
                    used.append(option.variable)
                case "0", "false", "no", "off":
                    continue
                default:
                    throw EnvironmentError(message: "\(option.variable) must be 1 or 0 (true or false), not '\(value)'")
                }
            case .secret:
                if let value {
                    added.append("--\(option.name)=\(value)")
                    used.append(option.variable)
                } else if let file = environment[option.variable + "_FILE"], !file.isEmpty {
                    added.append("--\(option.name)-file=\(file)")
                    used.append(option.variable + "_FILE")
                }
            }
        }
        // Before a `--` that ends the options, if there is one.
        var merged = arguments
        merged.insert(contentsOf: added, at: arguments.firstIndex(of: "--") ?? arguments.endIndex)
        return (merged, used)
    }

    private static func given(_ name: String, in arguments: [String]) -> Bool {
        arguments.contains { $0 == "--\(name)" || $0.hasPrefix("--\(name)=") }
    }
}
