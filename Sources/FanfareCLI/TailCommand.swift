import ArgumentParser
import Fanfare
import ServerSentEvents

struct TailCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tail",
        abstract: "Subscribe to a stream URL and print events as they arrive."
    )

    @Argument(help: "A stream URL, e.g. http://127.0.0.1:8080/api/sse/subscribe/alice?channels=orders")
    var url: String

    @Option(help: "Resume after this event id (sent as Last-Event-ID).")
    var lastEventID: String?

    func run() async throws {
        let headers = self.lastEventID.map { [("Last-Event-ID", $0)] } ?? []
        let stream = try await FanfareHTTPClient.stream(self.url, headers: headers) { event in
            let id = event.id.map { " id=\($0)" } ?? ""
            print("[\(event.event ?? "message")\(id)] \(event.data ?? "")")
        }
        guard stream.status == 200 else {
            print("the node answered \(stream.status)")
            throw ExitCode(1)
        }
        await stream.waitUntilClosed()
    }
}
