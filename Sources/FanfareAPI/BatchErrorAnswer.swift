/// The answer to a batch publish (`POST /api/sse/notify` with a JSON array) in which some
/// event was not published: an ``ErrorAnswer``'s fields, plus what became of each event,
/// in the batch's order. (When every event was published the answer is simply the array of
/// their ``NotifyAnswer``s.)
public struct BatchErrorAnswer: Codable, Sendable, Hashable {
    /// What became of one event of the batch.
    public enum Item: Codable, Sendable, Hashable {
        case published(NotifyAnswer)
        case failed(ErrorAnswer)

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let answer = try? container.decode(NotifyAnswer.self), answer.ok {
                self = .published(answer)
            } else {
                self = .failed(try container.decode(ErrorAnswer.self))
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .published(let answer): try container.encode(answer)
            case .failed(let error): try container.encode(error)
            }
        }
    }

    /// Always `false`.
    public var ok: Bool
    /// How many events were not published, and what to do, as a sentence.
    public var error: String
    /// The HTTP status, repeated: that of the first event that failed.
    public var code: Int
    /// One entry per event of the batch, in order.
    public var results: [Item]

    public init(error: String, code: Int, results: [Item]) {
        self.ok = false
        self.error = error
        self.code = code
        self.results = results
    }
}
