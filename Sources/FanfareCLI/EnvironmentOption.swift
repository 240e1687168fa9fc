import Foundation

/// An option of a command that may also be given in the environment: `--max-body-bytes`
/// is `FANFARE_MAX_BODY_BYTES` unless named otherwise. A flag on the command line wins;
/// an empty variable counts as unset. A secret may also come from a file named by
/// `<VARIABLE>_FILE` (the same as its `--<name>-file` option).
struct EnvironmentOption: Sendable {
    enum Kind: Sendable {
        case value
        case flag
        case secret
    }

    /// The long option name, without dashes.
    let name: String
    let variable: String
    let kind: Kind

    static func value(_ name: String, variable: String? = nil) -> EnvironmentOption {
        EnvironmentOption(name: name, variable: variable ?? Self.variable(for: name), kind: .value)
    }

    static func flag(_ name: String, variable: String? = nil) -> EnvironmentOption {
        EnvironmentOption(name: name, variable: variable ?? Self.variable(for: name), kind: .flag)
    }

    static func secret(_ name: String, variable: String? = nil) -> EnvironmentOption {
        EnvironmentOption(name: name, variable: variable ?? Self.variable(for: name), kind: .secret)
    }

    /// `max-body-bytes` → `FANFARE_MAX_BODY_BYTES`.
    static func variable(for name: String) -> String {
        "FANFARE_" + name.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// The lines a command's help lists its variables with.
    static func help(_ options: [EnvironmentOption]) -> String {
        var lines = ["Every option below can also be set in the environment (a flag on the command line wins):"]
        for option in options {
            switch option.kind {
            case .value: lines.append("  --\(option.name): \(option.variable)")
            case .flag: lines.append("  --\(option.name): \(option.variable)=1")
            case .secret:
                lines.append("  --\(option.name): \(option.variable), or a file named by \(option.variable)_FILE")
            }
        }
        return lines.joined(separator: "\n")
    }
}
