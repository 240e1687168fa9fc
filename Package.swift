// swift-tools-version:6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "fanfare",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "HiredisNIO", targets: ["HiredisNIO"]),
        .library(name: "ServerSentEvents", targets: ["ServerSentEvents"]),
        .library(name: "FanfareAPI", targets: ["FanfareAPI"]),
        .library(name: "Fanfare", targets: ["Fanfare"]),
        .library(name: "FanfareClient", targets: ["FanfareClient"]),
        .executable(name: "fanfare", targets: ["FanfareCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.7.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"]), .brew(["hiredis"])]
        ),
        .target(
            name: "HiredisNIO",
            dependencies: [
                "CHiredis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ServerSentEvents",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio")
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "FanfareAPI",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Fanfare",
            dependencies: [
                "FanfareAPI",
                "HiredisNIO",
                "ServerSentEvents",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            // Non-Swift sources, checked by their own tools in the test command and
            // compiled into the binary (no bundle to find at run time).
            resources: [
                .embedInCode("Resources/openapi.json"),
                .embedInCode("Resources/fanfare.lua"),
                .embedInCode("Resources/client.html"),
                .embedInCode("Resources/admin.html"),
                .embedInCode("Resources/fanfare.css"),
                .embedInCode("Resources/client.js"),
                .embedInCode("Resources/admin.js"),
                // Clients/js/fanfare.js, through a link: the client is kept beside its tests.
                .embedInCode("Resources/fanfare.js"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "FanfareClient",
            dependencies: [
                "FanfareAPI",
                "ServerSentEvents",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "FanfareCLI",
            dependencies: [
                "Fanfare",
                "FanfareAPI",
                "FanfareClient",
                "HiredisNIO",
                "ServerSentEvents",
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HiredisNIOTests",
            dependencies: [
                "HiredisNIO",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ServerSentEventsTests",
            dependencies: [
                "ServerSentEvents",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FanfareTests",
            dependencies: [
                "Fanfare",
                "FanfareAPI",
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FanfareCLITests",
            dependencies: [
                "FanfareCLI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "HiredisNIO",
                .product(name: "JWTKit", package: "jwt-kit"),
                "Fanfare",
                "FanfareAPI",
                "ServerSentEvents",
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
