// swift-tools-version:6.2
import PackageDescription

// The benchmarks' own package: the load generator and the micro-benchmarks, built only
// when measuring (`Benchmarks/scenarios.sh` builds them), so the root package builds just
// what users run and test. The micro-benchmarks use the root package's libraries.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "fanfare-benchmarks",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "fanfare-load", targets: ["fanfare-load"]),
        .executable(name: "fanfare-microbench", targets: ["fanfare-microbench"]),
    ],
    dependencies: [
        .package(name: "fanfare", path: ".."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        .executableTarget(
            name: "fanfare-load",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/LoadGenerator",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "fanfare-microbench",
            dependencies: [
                .product(name: "HiredisNIO", package: "fanfare"),
                .product(name: "ServerSentEvents", package: "fanfare"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/MicroBenchmarks",
            swiftSettings: swiftSettings
        ),
    ]
)
