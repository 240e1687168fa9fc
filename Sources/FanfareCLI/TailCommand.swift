import ArgumentParser
import FanfareClient
import Foundation
import ServerSentEvents

struct TailCommand: AsyncParsableCommand, EnvironmentConfigurable {
    static let environment: [EnvironmentOption] = [.value("cacert")]

    static let configuration = CommandConfiguration(
        commandName: "tail",
        abstract: "Subscribe to a stream URL and print events as they arrive.",
        discussion: EnvironmentOption.help(Self.environment)
    )

    @Argument(help: "A stream URL, e.g. http://127.0.0.1:8080/api/sse/subscribe/alice?channels=orders")
    var url: String

    @Option(help: "Resume after this event id (sent as Last-Event-ID).")
    var lastEventID: String?

    @Option(help: "PEM file of a certificate to trust for https:// besides the system's.")
    var cacert: String?

    func run() async throws {
        let headers = self.lastEventID.map { [(name: "Last-Event-ID", value: $0)] } ?? []
        let end = try await FanfareClient(caCertificateFile: self.cacert).using { client in
            try await client.stream(self.url, headers: headers) { event in
                let id = event.id.map { " id=\($0)" } ?? ""
                // Written at once, one line per event, also into a pipe or a file.
                let line = "[\(event.event ?? "message")\(id)] \(event.data ?? "")\n"
                FileHandle.standardOutput.write(Data(line.utf8))
            }
        }
        guard end.status == 200 else {
            print("the node answered \(end.status): \(end.body)")
            throw ExitCode(1)
        }
    }
}
