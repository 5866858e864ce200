// swift-tools-version:6.0
import PackageDescription

// One settings array for every Swift target: Swift 6 language mode, strict concurrency.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("NonisolatedNonsendingByDefault"),
]

/// An example application: a dynamic library that mod_swgi loads (`libNAME.so`).
func example(_ name: String, _ more: [Target.Dependency] = []) -> (Product, Target) {
    (
        .library(name: name, type: .dynamic, targets: [name]),
        .target(name: name, dependencies: ["SWGIBridge"] + more, path: "Sources/Examples/\(name)",
                swiftSettings: swiftSettings)
    )
}

let examples = ["Hello", "EnvironDump", "Greetings", "ResultLength", "Dispatcher", "Methods", "Errors", "Blog", "Slow"].map { example($0) }
    + ["Counter", "Guess"].map { example($0, ["SWGISessions"]) }
    + [example("Notes", [.product(name: "SQLiteNIO", package: "sqlite-nio")])]

let package = Package(
    name: "mod_swgi",
    products: [
        // The interface application authors program against: no C, no Apache.
        .library(name: "SWGI", targets: ["SWGI"]),
        // What an application library links to be loadable by mod_swgi (re-exports SWGI).
        .library(name: "SWGIBridge", targets: ["SWGIBridge"]),
        // Call an application with no server, in tests (werkzeug's test client).
        .library(name: "SWGITesting", targets: ["SWGITesting"]),
        .library(name: "SWGIStatic", targets: ["SWGIStatic"]),
        // The standalone server (wsgiref.simple_server's counterpart).
        .executable(name: "swgi-serve", targets: ["swgi-serve"]),
        // A private Apache in one command (mod_wsgi-express's counterpart).
        .executable(name: "swgi-express", targets: ["swgi-express"]),
        // Sessions in a signed cookie (HMAC-SHA256 from swift-crypto).
        .library(name: "SWGISessions", targets: ["SWGISessions"]),
        .library(name: "SWGITestApps", type: .dynamic, targets: ["SWGITestApps"]),
        // The Swift contestant of scripts/bench (apache/bench/ holds the others).
        .library(name: "SWGIBench", type: .dynamic, targets: ["SWGIBench"]),
    ] + examples.map(\.0),
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/google/swift-benchmark", from: "0.1.2"),
        .package(url: "https://github.com/vapor/sqlite-nio", from: "1.13.2"),
    ],
    targets: [
        .target(name: "SWGI", swiftSettings: swiftSettings),
        // The versioned C ABI shared by the Apache shim (apache/) and SWGIBridge.
        .target(name: "CSWGIABI"),
        .target(name: "SWGIBridge", dependencies: ["SWGI", "SWGIStatic", "CSWGIABI"], swiftSettings: swiftSettings),
        // Files: swgi.file_wrapper over POSIX files, and the StaticFiles middleware.
        .target(name: "SWGIStatic", dependencies: ["SWGI"], swiftSettings: swiftSettings),
        // Loading application libraries from Swift (swgi-serve, swgi-express).
        .target(name: "SWGIHosting", dependencies: ["CSWGIABI"], swiftSettings: swiftSettings),
        .executableTarget(name: "swgi-serve", dependencies: [
            "CSWGIABI", "SWGIHosting",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ], swiftSettings: swiftSettings),
        .executableTarget(name: "swgi-express", dependencies: [
            "SWGIHosting",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: swiftSettings),
        .target(name: "SWGITesting", dependencies: ["SWGI", "SWGIStatic"], swiftSettings: swiftSettings),
        .target(name: "SWGISessions", dependencies: ["SWGI", .product(name: "Crypto", package: "swift-crypto")],
                swiftSettings: swiftSettings),
        .target(name: "SWGIBench", dependencies: ["SWGIBridge", "CSWGIABI"], path: "Tests/Bench", swiftSettings: swiftSettings),
        // scripts/microbench: the hot Swift paths with no server, with allocation counts.
        .target(name: "CMallocCounter", path: "Benchmarks/CMallocCounter"),
        .executableTarget(name: "swgi-microbench", dependencies: [
            "SWGI", "SWGIHosting", "CSWGIABI", "CMallocCounter",
            .product(name: "Benchmark", package: "swift-benchmark"),
        ], path: "Benchmarks/Sources", swiftSettings: swiftSettings),
        .testTarget(name: "SWGITests", dependencies: ["SWGI", "SWGITesting", "SWGISessions", "SWGIStatic"],
                    swiftSettings: swiftSettings),
        // The bridge through the C ABI, its host's calls from many threads
        // (scripts/test runs it under ThreadSanitizer too).
        .testTarget(name: "SWGIBridgeTests", dependencies: ["SWGIBridge", "CSWGIABI", "SWGITestApps"],
                    swiftSettings: swiftSettings),
        // Applications the integration tests serve through Apache (Tests/integration).
        .target(name: "SWGITestApps", dependencies: ["SWGIBridge", "SWGIStatic"], path: "Tests/Apps",
                swiftSettings: swiftSettings),
    ] + examples.map(\.1)
)
