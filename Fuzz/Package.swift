// swift-tools-version:6.1
// libFuzzer harness for statetool's fuzz targets (Sources/FuzzTargets in the main package).
// Build and run with Scripts/fuzz; kept out of the main package so `swift build` and
// `swift test` need no libFuzzer.
import PackageDescription

let package = Package(
    name: "statetool-fuzz",
    dependencies: [.package(name: "statetool", path: "..")],
    targets: [
        .executableTarget(
            name: "StatetoolFuzz",
            dependencies: [.product(name: "FuzzTargets", package: "statetool")]
        ),
    ]
)
