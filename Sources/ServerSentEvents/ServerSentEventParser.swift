public import NIOCore

/// A streaming `text/event-stream` parser that follows the WHATWG EventSource rules.
///
/// Feed it bytes in chunks of any size. It strips one leading byte order mark, accepts
/// LF, CRLF and CR line ends (a CRLF split across chunks counts once), splits each line
/// at the first colon and drops one space after it, ignores comments and unknown fields,
/// takes `retry` only when it is all ASCII digits, ignores an `id` containing NUL, keeps
/// the last event id across events, and dispatches on a blank line only when at least
/// one `data` line was seen. An unfinished line or event at the end of the stream is
/// never dispatched.
///
/// Dispatched events carry the last event id (`nil` while it is empty), the event type
/// (`nil` meaning the default, `message`) and the data; ``reconnectionTime`` holds the
/// latest valid `retry`.
public struct ServerSentEventParser: Sendable {
    /// The last event id: set by `id` lines, kept across events.
    public private(set) var lastEventID = ""
    /// The latest valid `retry` value in milliseconds.
    public private(set) var reconnectionTime: Int?

    private var pendingLine: [UInt8] = []
    private var skipLeadingLF = false
    private var atStreamStart = true
    private var data: [UInt8] = []
    private var eventType = ""

    public init() {}

    /// Parses the readable bytes of `buffer` and returns the events they complete.
    public mutating func parse(_ buffer: ByteBuffer) -> [ServerSentEvent] {
        var events: [ServerSentEvent] = []
        self.parse(buffer) { events.append($0) }
        return events
    }

    /// Parses `bytes` and returns the events they complete.
    public mutating func parse<Bytes: Sequence>(bytes: Bytes) -> [ServerSentEvent] where Bytes.Element == UInt8 {
        var events: [ServerSentEvent] = []
        let array = Array(bytes)
        array.withUnsafeBytes { raw in self.parse(raw) { events.append($0) } }
        return events
    }

    /// Parses the readable bytes of `buffer`, calling `onEvent` for each completed event.
    public mutating func parse(_ buffer: ByteBuffer, onEvent: (ServerSentEvent) -> Void) {
        buffer.withUnsafeReadableBytes { raw in self.parse(raw, onEvent: onEvent) }
    }

    private mutating func parse(_ raw: UnsafeRawBufferPointer, onEvent: (ServerSentEvent) -> Void) {
        var index = 0
        let count = raw.count
        if self.skipLeadingLF, count > 0 {
            self.skipLeadingLF = false
            if raw[0] == 0x0A { index = 1 }
        }
        var lineStart = index
        while index < count {
            let byte = raw[index]
            guard byte == 0x0A || byte == 0x0D else {
                index += 1
                continue
            }
            let piece = UnsafeRawBufferPointer(rebasing: raw[lineStart..<index])
            if self.pendingLine.isEmpty {
                self.processLine(piece, onEvent: onEvent)
            } else {
                self.pendingLine.append(contentsOf: piece)
                let line = self.pendingLine
                self.pendingLine.removeAll(keepingCapacity: true)
                line.withUnsafeBytes { self.processLine($0, onEvent: onEvent) }
            }
            index += 1
            if byte == 0x0D {
                if index < count {
                    if raw[index] == 0x0A { index += 1 }
                } else {
                    self.skipLeadingLF = true
                }
            }
            lineStart = index
        }
        if lineStart < count {
            self.pendingLine.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[lineStart..<count]))
        }
    }

    private mutating func processLine(_ full: UnsafeRawBufferPointer, onEvent: (ServerSentEvent) -> Void) {
        var line = full
        if self.atStreamStart {
            self.atStreamStart = false
            if line.count >= 3, line[0] == 0xEF, line[1] == 0xBB, line[2] == 0xBF {
                line = UnsafeRawBufferPointer(rebasing: line[3...])
            }
        }
        if line.isEmpty {
            self.dispatch(onEvent: onEvent)
            return
        }
        if line[0] == UInt8(ascii: ":") { return }

        let field: UnsafeRawBufferPointer
        var value: UnsafeRawBufferPointer
        if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
            field = UnsafeRawBufferPointer(rebasing: line[..<colon])
            value = UnsafeRawBufferPointer(rebasing: line[(colon + 1)...])
            if let first = value.first, first == UInt8(ascii: " ") {
                value = UnsafeRawBufferPointer(rebasing: value[1...])
            }
        } else {
            field = line
            value = UnsafeRawBufferPointer(rebasing: line[line.endIndex...])
        }

        if field.elementsEqual("data".utf8) {
            self.data.append(contentsOf: value)
            self.data.append(0x0A)
        } else if field.elementsEqual("event".utf8) {
            self.eventType = String(decoding: value, as: UTF8.self)
        } else if field.elementsEqual("id".utf8) {
            if !value.contains(0) {
                self.lastEventID = String(decoding: value, as: UTF8.self)
            }
        } else if field.elementsEqual("retry".utf8) {
            if !value.isEmpty, value.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                let milliseconds = Int(String(decoding: value, as: UTF8.self))
            {
                self.reconnectionTime = milliseconds
            }
        }
    }

    private mutating func dispatch(onEvent: (ServerSentEvent) -> Void) {
        guard !self.data.isEmpty else {
            self.eventType = ""
            return
        }
        self.data.removeLast()  // the LF added after the last data line
        let event = ServerSentEvent(
            id: self.lastEventID.isEmpty ? nil : self.lastEventID,
            event: self.eventType.isEmpty ? nil : self.eventType,
            data: String(decoding: self.data, as: UTF8.self)
        )
        self.data.removeAll(keepingCapacity: true)
        self.eventType = ""
        onEvent(event)
    }
}
