import Foundation

/// Wall-clock time for ids and registry rows (monotonic time cannot be shared between nodes).
enum WallClock {
    static func milliseconds() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1_000).rounded(.down))
    }
}
