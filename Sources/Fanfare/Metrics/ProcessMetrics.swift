#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's own figures in the names every Prometheus dashboard expects
/// (`process_cpu_seconds_total`, `process_resident_memory_bytes`, …), read from `/proc` at
/// each scrape. `/proc` is memory, not disk: reading it does not block the loop. Where
/// there is no `/proc` (macOS) there are no such lines.
struct ProcessMetrics: Sendable, Equatable {
    var cpuSeconds: Double
    var residentBytes: Int
    var virtualBytes: Int
    var openFileDescriptors: Int
    var maxFileDescriptors: Int
    /// Seconds since the Unix epoch.
    var startTimeSeconds: Double

    /// The figures now; `nil` without `/proc`.
    static func current() -> ProcessMetrics? {
        guard let stat = Self.contents(of: "/proc/self/stat"), let bootTime = Self.bootTimeSeconds else { return nil }
        var limit = rlimit()
        let maxFDs = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 ? Int(clamping: limit.rlim_cur) : 0
        return Self(
            stat: stat,
            ticksPerSecond: Int(sysconf(Int32(_SC_CLK_TCK))),
            pageSize: Int(sysconf(Int32(_SC_PAGESIZE))),
            bootTime: bootTime,
            openFileDescriptors: Self.openFileDescriptors(),
            maxFileDescriptors: maxFDs
        )
    }

    /// Reads `/proc/self/stat`'s text: after the command's name (in parentheses, and it may
    /// hold spaces and parentheses of its own) come the state (field 3), user and system
    /// CPU ticks (14, 15), the start in ticks after boot (22), virtual bytes (23) and
    /// resident pages (24).
    init?(
        stat: String,
        ticksPerSecond: Int,
        pageSize: Int,
        bootTime: Int,
        openFileDescriptors: Int,
        maxFileDescriptors: Int
    ) {
        guard let close = stat.lastIndex(of: ")"), ticksPerSecond > 0 else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] is field 3.
        func field(_ number: Int) -> Int? { fields.indices.contains(number - 3) ? Int(fields[number - 3]) : nil }
        guard let user = field(14), let system = field(15), let start = field(22), let virtual = field(23),
            let resident = field(24)
        else { return nil }
        let ticks = Double(ticksPerSecond)
        self.cpuSeconds = Double(user + system) / ticks
        self.residentBytes = resident * pageSize
        self.virtualBytes = virtual
        self.openFileDescriptors = openFileDescriptors
        self.maxFileDescriptors = maxFileDescriptors
        self.startTimeSeconds = Double(bootTime) + Double(start) / ticks
    }

    /// The Prometheus text of these figures.
    var text: String {
        func line(_ name: String, _ type: String, _ help: String, _ value: String) -> String {
            "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        return line(
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time spent, in seconds.",
            "\(self.cpuSeconds)"
        )
            + line("process_resident_memory_bytes", "gauge", "Resident memory size, in bytes.", "\(self.residentBytes)")
            + line("process_virtual_memory_bytes", "gauge", "Virtual memory size, in bytes.", "\(self.virtualBytes)")
            + line("process_open_fds", "gauge", "Open file descriptors.", "\(self.openFileDescriptors)")
            + line(
                "process_max_fds",
                "gauge",
                "The most file descriptors the process may open.",
                "\(self.maxFileDescriptors)"
            )
            + line(
                "process_start_time_seconds",
                "gauge",
                "Start time of the process since the Unix epoch, in seconds.",
                "\(self.startTimeSeconds)"
            )
    }

    /// The boot time, read once (it does not change while the process runs).
    private static let bootTimeSeconds: Int? = Self.contents(of: "/proc/stat").flatMap(Self.bootTime)

    /// `btime` of `/proc/stat`: the boot time, in seconds since the epoch.
    static func bootTime(_ system: String) -> Int? {
        for line in system.split(separator: "\n") where line.hasPrefix("btime ") {
            return Int(line.dropFirst("btime ".count))
        }
        return nil
    }

    private static func openFileDescriptors() -> Int {
        guard let directory = opendir("/proc/self/fd") else { return 0 }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let isDot = withUnsafeBytes(of: entry.pointee.d_name) { $0.first == UInt8(ascii: ".") }
            if !isDot { count += 1 }
        }
        // The directory being listed is one of them.
        return max(0, count - 1)
    }

    /// A small file's bytes as text (the `/proc` files are read in one or a few reads).
    private static func contents(of path: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4_096)
        while bytes.count < 1 << 20 {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
