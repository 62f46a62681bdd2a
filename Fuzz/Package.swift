// swift-tools-version:6.1
// libFuzzer targets for statetool's readers. Build and run with Scripts/fuzz; kept out of
// the main package so `swift build` and `swift test` stay fast.
import PackageDescription

let package = Package(
    name: "statetool-fuzz",
    dependencies: [.package(name: "statetool", path: "..")],
    targets: [
        .executableTarget(
            name: "FuzzStateStreamReader",
            dependencies: [.product(name: "StateStream", package: "statetool")]
        ),
    ]
)
