// swift-tools-version:6.0
import PackageDescription

// One settings array for every Swift target: Swift 6 language mode, strict concurrency.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

/// An example application: a dynamic library that mod_swgi loads (`libNAME.so`).
func example(_ name: String) -> (Product, Target) {
    (
        .library(name: name, type: .dynamic, targets: [name]),
        .target(name: name, dependencies: ["SWGIBridge"], path: "Sources/Examples/\(name)",
                swiftSettings: swiftSettings)
    )
}

let examples = ["Hello", "EnvironDump", "Greetings"].map(example)

let package = Package(
    name: "mod_swgi",
    products: [
        // The interface application authors program against: no C, no Apache.
        .library(name: "SWGI", targets: ["SWGI"]),
        // What an application library links to be loadable by mod_swgi (re-exports SWGI).
        .library(name: "SWGIBridge", targets: ["SWGIBridge"]),
        // Call an application with no server, in tests (werkzeug's test client).
        .library(name: "SWGITesting", targets: ["SWGITesting"]),
        .library(name: "SWGITestApps", type: .dynamic, targets: ["SWGITestApps"]),
    ] + examples.map(\.0),
    targets: [
        .target(name: "SWGI", swiftSettings: swiftSettings),
        // The versioned C ABI shared by the Apache shim (apache/) and SWGIBridge.
        .target(name: "CSWGIABI"),
        .target(name: "SWGIBridge", dependencies: ["SWGI", "CSWGIABI"], swiftSettings: swiftSettings),
        .target(name: "SWGITesting", dependencies: ["SWGI"], swiftSettings: swiftSettings),
        .testTarget(name: "SWGITests", dependencies: ["SWGI", "SWGITesting"], swiftSettings: swiftSettings),
        // Applications the integration tests serve through Apache (Tests/integration).
        .target(name: "SWGITestApps", dependencies: ["SWGIBridge"], path: "Tests/Apps",
                swiftSettings: swiftSettings),
    ] + examples.map(\.1)
)
