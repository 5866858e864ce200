// swift-tools-version:6.0
// A package as an application author writes one: swgi-express serve builds it.
import PackageDescription

let package = Package(
    name: "ExpressApp",
    products: [.library(name: "ExpressApp", type: .dynamic, targets: ["ExpressApp"])],
    dependencies: [.package(name: "mod_swgi", path: "../../..")],
    targets: [.target(name: "ExpressApp", dependencies: [.product(name: "SWGIBridge", package: "mod_swgi")])]
)
