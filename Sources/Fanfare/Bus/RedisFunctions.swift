/// The Redis Function library every node loads at start (`FUNCTION LOAD REPLACE`):
/// `Resources/fanfare.lua`, embedded in the binary. The test suite loads it into a real
/// Redis and calls every function.
///
/// `fanfare_publish` is the one command any service can use to publish:
///
///     FCALL fanfare_publish 2 fanfare:history fanfare:nodes <channel> <event> <data>
///
/// It validates the channel and event name, encodes the SSE body once (splitting data on
/// CR, LF and CRLF), appends it to the history stream (whose id becomes the event id),
/// publishes the complete frame, and answers `{id, nodes reached, connections}` where
/// connections is the sum of every live node's count for the channel. The registry's
/// functions (`fanfare_heartbeat`, `fanfare_leave`, `fanfare_cluster`, `fanfare_client`)
/// and resume's `fanfare_replay` live in the same library.
enum RedisFunctions {
    static let libraryName = "fanfare"

    /// The library's Lua source.
    static let source = String(decoding: PackageResources.fanfare_lua, as: UTF8.self)
}
