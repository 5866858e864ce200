// swift-tools-version:6.0
// A package that does not compile: swgi-express must show the compiler's error.
import PackageDescription

let package = Package(
    name: "Broken",
    products: [.library(name: "Broken", type: .dynamic, targets: ["Broken"])],
    targets: [.target(name: "Broken")]
)
