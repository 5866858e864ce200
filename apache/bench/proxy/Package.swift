// swift-tools-version:6.1
// scripts/bench --with-proxy: the same scenarios from a Hummingbird server,
// which Apache reaches through mod_proxy (how Swift applications are served
// behind Apache today). A package of its own, built only for that run.
import PackageDescription

let package = Package(
    name: "swgi-bench-proxy",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
    ],
    targets: [
        .executableTarget(name: "BenchProxy", dependencies: [
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
        ]),
    ]
)
