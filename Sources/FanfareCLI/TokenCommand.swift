import ArgumentParser
import Fanfare
import Foundation

struct TokenCommand: AsyncParsableCommand, EnvironmentConfigurable {
    static let environment: [EnvironmentOption] = [.secret("secret", variable: "FANFARE_JWT_SECRET")]

    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Print a signed token: a subscriber's, or one that may publish or administer.",
        discussion: EnvironmentOption.help(Self.environment)
    )

    @Option(help: "HS256 secret.")
    var secret: String?

    @Option(help: "File holding the HS256 secret.")
    var secretFile: String?

    @Option(help: "PEM file of an ES256 (P-256) or RSA private key, to sign ES256/RS256 instead.")
    var privateKey: String?

    @Option(help: "The user id (the token's sub).")
    var sub: String?

    @Option(help: "Channels the holder may join, comma-separated; a trailing * is a prefix wildcard.")
    var channels: String?

    @Option(help: "Lifetime: seconds, or with a unit: 90s, 30m, 12h, 7d.")
    var ttl = "1h"

    @Option(help: "The audience (aud) the token is for, when nodes check it (--jwt-audience).")
    var aud: String?

    @Option(help: "The issuer (iss), when nodes check it (--jwt-issuer).")
    var iss: String?

    @Flag(help: "The token may publish.")
    var publish = false

    @Flag(help: "The token may use the admin routes.")
    var admin = false

    func run() async throws {
        guard let seconds = Self.seconds(self.ttl), seconds > 0 else {
            throw ValidationError("--ttl must be a positive duration such as 3600, 90s, 30m, 12h or 7d")
        }
        var pem: String?
        if let path = self.privateKey {
            pem = try String(contentsOfFile: path, encoding: .utf8)
        }
        let secret = try Secret.read(self.secret, file: self.secretFile, option: "secret")
        guard secret != nil || pem != nil else {
            throw ValidationError("give --secret (or FANFARE_JWT_SECRET) or --private-key")
        }
        let channels = self.channels.map {
            $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
        }
        let token = try await TokenMinter.mint(
            secret: pem == nil ? secret : nil,
            privateKeyPEM: pem,
            subject: self.sub,
            channels: channels,
            expiresIn: seconds,
            publish: self.publish,
            admin: self.admin,
            audience: self.aud,
            issuer: self.iss
        )
        print(token)
    }

    static func seconds(_ text: String) -> TimeInterval? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        if let last = text.last, let unit = units[last], let value = Double(text.dropLast()) { return value * unit }
        return Double(text)
    }
}
