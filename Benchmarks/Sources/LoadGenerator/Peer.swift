import ArgumentParser
import NIOCore

/// The server under measurement: Fanfare, or nchan (nginx with the nchan module, set up by
/// Benchmarks/nchan-peer.sh) as the peer measured beside it, with the same payloads.
///
/// A Fanfare stream is always on its client's channel and `broadcast`. An nchan stream is
/// on the one channel the scenario needs (`broadcast`, or its own when each publish
/// reaches one stream): nchan's lightest setup, so the comparison does not favour Fanfare.
enum Peer: String, ExpressibleByArgument, Sendable {
    case fanfare
    case nchan

    /// The request that opens stream `index` (`spread`: each publish reaches one stream).
    func subscribeRequest(index: Int, host: String, lastEventID: String?, spread: Bool) -> String {
        let resume = lastEventID.map { "Last-Event-ID: \($0)\r\n" } ?? ""
        let path =
            switch self {
            case .fanfare: "/api/sse/subscribe/load-\(index)"
            case .nchan: spread ? "/sub/load-\(index)" : "/sub/broadcast"
            }
        return "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nAccept: text/event-stream\r\n\(resume)\r\n"
    }

    /// The request that publishes `payload` (a JSON object) to every stream, or to stream
    /// `stream` alone.
    func publishRequest(payload: String, stream: Int?, host: String) -> String {
        let path: String
        let body: String
        switch self {
        case .fanfare:
            path = "/api/sse/notify"
            let target = stream.map { #""clientId":"load-\#($0)""# } ?? #""broadcast":true"#
            body = #"{\#(target),"event":"load","payload":\#(payload)}"#
        case .nchan:
            path = "/pub/" + (stream.map { "load-\($0)" } ?? "broadcast")
            body = payload
        }
        return "POST \(path) HTTP/1.1\r\nHost: \(host)\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    /// The request that publishes the JSON array `batch` of notify bodies at once
    /// (Fanfare only).
    func batchRequest(batch: String, host: String) -> String {
        "POST /api/sse/notify HTTP/1.1\r\nHost: \(host)\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(batch.utf8.count)\r\n\r\n\(batch)"
    }

    /// Whether an answer's status says the event was published.
    func published(_ status: Int) -> Bool {
        switch self {
        case .fanfare: status == 200
        // 201: some subscriber had it; 202: queued for none yet.
        case .nchan: status == 201 || status == 202
        }
    }

    /// Fanfare says a stream is ready with `__connected`; nchan has no such event, so a
    /// stream counts as open once its response head arrived.
    var connectedOnHead: Bool { self == .nchan }

    /// Whether the `id:` lines can be read for order: Fanfare's cursor holds the broadcast
    /// position; nchan's ids are its own.
    var readsIDs: Bool { self == .fanfare }

    /// Writes the request that publishes events `first ..< first + count` (more than one:
    /// a batch, Fanfare only), each with `sentAt` as its clock, to every stream or, with
    /// `spread` streams, event `n` to stream `firstStream + n % spread`; the events of a
    /// batch all go to one stream (`firstStream + (n / batchSize) % spread`), as a
    /// service streams one client's output token by token. Bytes only: this runs for
    /// every publish of a flat-out run.
    func writePublish(
        first: Int,
        count: Int,
        batchSize: Int,
        sentAt: Int64,
        padding: String,
        spread: Int,
        firstStream: Int,
        host: String,
        into request: inout ByteBuffer
    ) {
        var body = ByteBuffer()
        body.reserveCapacity(count * (padding.utf8.count + 96))
        let batch = count > 1
        if batch { body.writeStaticString("[") }
        for seq in first..<(first + count) {
            if seq > first { body.writeStaticString(",") }
            if self == .fanfare {
                if spread > 0 {
                    body.writeStaticString(#"{"clientId":"load-"#)
                    body.writeString(String(firstStream + (batchSize > 1 ? seq / batchSize : seq) % spread))
                    body.writeStaticString(#"","event":"load","payload":"#)
                } else {
                    body.writeStaticString(#"{"broadcast":true,"event":"load","payload":"#)
                }
            }
            body.writeStaticString(#"{"seq":"#)
            body.writeString(String(seq))
            body.writeStaticString(#","t":"#)
            body.writeString(String(sentAt))
            body.writeStaticString(#","pad":""#)
            body.writeString(padding)
            body.writeStaticString(#""}"#)
            if self == .fanfare { body.writeStaticString("}") }
        }
        if batch { body.writeStaticString("]") }
        request.writeStaticString("POST ")
        switch self {
        case .fanfare:
            request.writeStaticString("/api/sse/notify")
        case .nchan:
            request.writeStaticString("/pub/")
            request.writeString(spread > 0 ? "load-\(firstStream + first % spread)" : "broadcast")
        }
        request.writeStaticString(" HTTP/1.1\r\nHost: ")
        request.writeString(host)
        request.writeStaticString("\r\nContent-Type: application/json\r\nContent-Length: ")
        request.writeString(String(body.readableBytes))
        request.writeStaticString("\r\n\r\n")
        request.writeBuffer(&body)
    }
}
