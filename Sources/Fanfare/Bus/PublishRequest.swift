/// What a publish asks for: one channel, an event name and its data (JSON text).
struct PublishRequest: Sendable, Hashable {
    var channel: String
    var event: String
    var data: String

    init(channel: String, event: String, data: String) {
        self.channel = channel
        self.event = event
        self.data = data
    }
}
