import ArgumentParser
import Testing

@testable import FanfareCLI

/// The one environment mechanism of every command: what a variable adds to a command line.
@Suite struct EnvironmentArgumentsTests {
    private let options: [EnvironmentOption] = [
        .value("port"), .value("redis", variable: "FANFARE_REDIS_URL"), .flag("trust-forwarded-for"),
        .secret("jwt-secret"), .value("drain-grace-seconds"),
    ]

    private func merge(_ arguments: [String], _ environment: [String: String]) throws -> [String] {
        try EnvironmentArguments.merge(arguments, options: self.options, environment: environment).arguments
    }

    @Test func namesFollowOneRuleUnlessNamedOtherwise() {
        #expect(EnvironmentOption.variable(for: "max-connections-per-ip") == "FANFARE_MAX_CONNECTIONS_PER_IP")
        #expect(self.options[1].variable == "FANFARE_REDIS_URL")
    }

    @Test func variablesFillOptionsTheCommandLineLeavesOut() throws {
        let merged = try EnvironmentArguments.merge(
            ["serve", "--port", "9000"],
            options: self.options,
            environment: [
                "FANFARE_PORT": "1", "FANFARE_REDIS_URL": "redis://r:6379", "FANFARE_TRUST_FORWARDED_FOR": "1",
            ]
        )
        #expect(merged.arguments == ["serve", "--port", "9000", "--redis=redis://r:6379", "--trust-forwarded-for"])
        #expect(merged.used == ["FANFARE_REDIS_URL", "FANFARE_TRUST_FORWARDED_FOR"])
        #expect(try self.merge(["serve", "--port=9000"], ["FANFARE_PORT": "1"]) == ["serve", "--port=9000"])
    }

    @Test func emptyVariablesAndFalseFlagsAddNothing() throws {
        #expect(try self.merge(["serve"], ["FANFARE_PORT": "", "FANFARE_TRUST_FORWARDED_FOR": "0"]) == ["serve"])
        #expect(try self.merge(["serve"], ["FANFARE_TRUST_FORWARDED_FOR": "false"]) == ["serve"])
    }

    @Test func aFlagVariableThatIsNeitherTrueNorFalseIsRefused() {
        #expect(throws: EnvironmentError.self) {
            try self.merge(["serve"], ["FANFARE_TRUST_FORWARDED_FOR": "maybe"])
        }
    }

    @Test func valuesThatLookLikeOptionsStayValues() throws {
        #expect(
            try self.merge(["serve"], ["FANFARE_DRAIN_GRACE_SECONDS": "-5", "FANFARE_JWT_SECRET": "-secret"]) == [
                "serve", "--jwt-secret=-secret", "--drain-grace-seconds=-5",
            ]
        )
    }

    @Test func secretsComeFromTheVariableOrTheFileItNames() throws {
        #expect(
            try self.merge(["serve"], ["FANFARE_JWT_SECRET_FILE": "/run/secret"]) == [
                "serve", "--jwt-secret-file=/run/secret",
            ]
        )
        #expect(
            try self.merge(["serve"], ["FANFARE_JWT_SECRET": "s", "FANFARE_JWT_SECRET_FILE": "/run/secret"]) == [
                "serve", "--jwt-secret=s",
            ]
        )
        // Either form on the command line wins over both variables.
        #expect(
            try self.merge(["serve", "--jwt-secret-file", "/f"], ["FANFARE_JWT_SECRET": "s"]) == [
                "serve", "--jwt-secret-file", "/f",
            ]
        )
    }

    @Test func optionsGoBeforeAnEndOfOptionsMarker() throws {
        #expect(
            try self.merge(["tail", "--", "--odd-url"], ["FANFARE_PORT": "1"]) == [
                "tail", "--port=1", "--", "--odd-url",
            ]
        )
    }

    @Test func everyCommandsVariablesAreTheOptionsItHas() throws {
        // Each listed option parses, so a list cannot name an option the command lacks.
        let serve = try ServeCommand.parse(
            try EnvironmentArguments.merge(
                [],
                options: ServeCommand.environment,
                environment: Dictionary(
                    uniqueKeysWithValues: ServeCommand.environment.map { ($0.variable, Self.sample($0)) }
                )
            ).arguments
        )
        #expect(serve.port == 7)
        #expect(serve.trustForwardedFor)
        #expect(serve.drainGraceSeconds == 7)
        for command in [PublishCommand.self, ClusterCommand.self, TailCommand.self, TokenCommand.self]
            as [any EnvironmentConfigurable.Type]
        {
            let arguments = try EnvironmentArguments.merge(
                ObjectIdentifier(command) == ObjectIdentifier(TailCommand.self) ? ["http://127.0.0.1:1/"] : [],
                options: command.environment,
                environment: Dictionary(
                    uniqueKeysWithValues: command.environment.map { ($0.variable, Self.sample($0)) }
                )
            ).arguments
            _ = try command.parse(arguments)
        }
    }

    private static func sample(_ option: EnvironmentOption) -> String {
        switch option.kind {
        case .flag: "1"
        case .value where option.name == "log-level": "info"
        default: "7"
        }
    }
}
