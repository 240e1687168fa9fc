/// The data of `event: __end`, which a run stream writes right after its channel's final
/// event, before it ends the response: the run is over, and coming back would get 204.
public struct EndEvent: Codable, Sendable, Hashable {
    /// The run's channel.
    public var channel: String

    public init(channel: String) {
        self.channel = channel
    }
}
