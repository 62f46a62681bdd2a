// swift-tools-version:6.1
import Foundation
import PackageDescription

/// What `statetool --version` prints: the VERSION file (the one place the
/// version is written) and the commit the checkout is at, read from `.git`.
enum BuildInfo {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()

    static func read(_ url: URL) -> String? {
        (try? String(contentsOf: url, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static let version = read(root.appendingPathComponent("VERSION")) ?? "unknown"

    /// The checkout's git directory: `.git`, or in a linked worktree the folder its
    /// `.git` file names (`gitdir: PATH`).
    static let gitDirectory: URL = {
        let dotGit = root.appendingPathComponent(".git")
        guard let link = read(dotGit), link.hasPrefix("gitdir: ") else { return dotGit }
        return URL(fileURLWithPath: String(link.dropFirst(8)), relativeTo: root).standardizedFileURL
    }()

    /// Where the refs are: a worktree's `commondir` (the main `.git`), else the git directory.
    static let commonDirectory: URL = {
        guard let common = read(gitDirectory.appendingPathComponent("commondir")) else { return gitDirectory }
        return URL(fileURLWithPath: common, relativeTo: gitDirectory.appendingPathComponent("")).standardizedFileURL
    }()

    static let commit: String = {
        guard let head = read(gitDirectory.appendingPathComponent("HEAD")) else { return "unknown" }
        guard head.hasPrefix("ref: ") else { return String(head.prefix(12)) }
        let ref = String(head.dropFirst(5))
        for directory in [gitDirectory, commonDirectory] {
            if let loose = read(directory.appendingPathComponent(ref)) { return String(loose.prefix(12)) }
        }
        let packed = read(commonDirectory.appendingPathComponent("packed-refs"))?.split(separator: "\n").first { $0.hasSuffix(" \(ref)") }
        return packed.map { String($0.prefix(12)) } ?? "unknown"
    }()
}

let package = Package(
    name: "statetool",
    products: [
        .library(name: "StateStream", targets: ["StateStream"]),
        .library(name: "VhostUser", targets: ["VhostUser"]),
        .library(name: "MigrationFile", targets: ["MigrationFile"]),
        .library(name: "VirtiofsdState", targets: ["VirtiofsdState"]),
        .library(name: "LibvirtSaveImage", targets: ["LibvirtSaveImage"]),
        .library(name: "StatetoolKit", targets: ["StatetoolKit"]),
        // The fuzz targets' checks, for Fuzz/ (libFuzzer) and the corpus replay tests.
        .library(name: "FuzzTargets", targets: ["FuzzTargets"]),
        .executable(name: "statetool", targets: ["statetool"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // libzstd from the system (Debian: libzstd-dev), found through pkg-config.
        .systemLibrary(
            name: "CZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]
        ),
        // zlib, libbz2 and liblzma from the system (Debian: zlib1g-dev, libbz2-dev,
        // liblzma-dev), for the gzip, bzip2 and xz layers of libvirt save images.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // Debian's libbz2-dev ships no pkg-config file: the header and library are on the default paths.
        .systemLibrary(name: "CBzip2", providers: [.apt(["libbz2-dev"])]),
        .systemLibrary(name: "CLzma", pkgConfig: "liblzma", providers: [.apt(["liblzma-dev"])]),
        // The version and commit the binary was built from.
        .target(
            name: "CBuildInfo",
            cSettings: [
                .define("STATETOOL_VERSION", to: "\"\(BuildInfo.version)\""),
                .define("STATETOOL_COMMIT", to: "\"\(BuildInfo.commit)\""),
            ]
        ),
        // Linux calls Swift's Glibc module hides (it is built without _GNU_SOURCE).
        .target(
            name: "CStateToolShims",
            cSettings: [.define("_GNU_SOURCE")]
        ),
        // Every system call statetool makes, typed: descriptors owned and closed
        // once, errors naming the call and its errno, EINTR handled in one place.
        .target(
            name: "SystemCalls",
            dependencies: ["CStateToolShims", .product(name: "SystemPackage", package: "swift-system")]
        ),
        // The chunk-framed state stream format: reading, writing, validation,
        // summaries, comparison, repair; zstd; safe output files.
        .target(
            name: "StateStream",
            dependencies: [
                "CZstd",
                "CZlib",
                "CBzip2",
                "CLzma",
                "SystemCalls",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The vhost-user protocol: messages, an fd-passing socket, the front-end
        // (QEMU's role) and a reference back-end.
        .target(
            name: "VhostUser",
            dependencies: [
                "SystemCalls",
                "StateStream",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // QEMU migration files: walking their sections and finding the
        // back-end state streams inside them.
        .target(
            name: "MigrationFile",
            dependencies: [
                "StateStream",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // libvirt save images: the header and XML around a QEMU migration stream.
        .target(
            name: "LibvirtSaveImage",
            dependencies: ["StateStream", "MigrationFile", .product(name: "SystemPackage", package: "swift-system")]
        ),
        // What virtiofsd puts inside the payload: decoding, comparing, and
        // checking a destination's shared directory against it.
        .target(
            name: "VirtiofsdState",
            dependencies: ["SystemCalls", "StateStream", "MigrationFile", .product(name: "SystemPackage", package: "swift-system")]
        ),
        // What passt puts inside its payload: the observed addresses and TCP flows.
        .target(
            name: "PasstState",
            dependencies: ["StateStream", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // What every command does: inputs told apart once, back-end payloads
        // behind one protocol, outputs verified before they are put in place,
        // results that are their own JSON. The CLI parses and renders; this decides.
        .target(
            name: "StatetoolKit",
            dependencies: [
                "SystemCalls", "StateStream", "VhostUser", "MigrationFile", "VirtiofsdState", "PasstState", "LibvirtSaveImage",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Fuzz targets: arbitrary bytes into each reader, invariants checked.
        .target(
            name: "FuzzTargets",
            dependencies: [
                "SystemCalls", "StateStream", "VhostUser", "MigrationFile", "VirtiofsdState", "PasstState", "LibvirtSaveImage",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // The command-line tool: arguments and printing only.
        .executableTarget(
            name: "statetool",
            dependencies: [
                "CBuildInfo",
                "SystemCalls",
                "StateStream",
                "VhostUser",
                "MigrationFile",
                "VirtiofsdState",
                "PasstState",
                "LibvirtSaveImage",
                "StatetoolKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // What the tests share: where fixtures are, running programs, the
        // every-split verifier.
        .target(
            name: "TestSupport",
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "SystemCallsTests",
            dependencies: ["TestSupport", "SystemCalls", .product(name: "SystemPackage", package: "swift-system")]
        ),
        .testTarget(
            name: "StateStreamTests",
            dependencies: ["TestSupport",
                "StateStream",
                "CZstd",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .testTarget(
            name: "VhostUserTests",
            dependencies: ["TestSupport", "VhostUser", "SystemCalls", "StateStream", .product(name: "SystemPackage", package: "swift-system")]
        ),
        .testTarget(
            name: "MigrationFileTests",
            dependencies: ["TestSupport", "MigrationFile", "StateStream", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "VirtiofsdStateTests",
            dependencies: ["TestSupport", "VirtiofsdState", "StateStream", "SystemCalls"]
        ),
        .testTarget(
            name: "LibvirtSaveImageTests",
            dependencies: ["TestSupport", "LibvirtSaveImage", "MigrationFile", "StateStream"]
        ),
        .testTarget(
            name: "PasstStateTests",
            dependencies: ["TestSupport", "PasstState", "StateStream"]
        ),
        .testTarget(
            name: "StatetoolKitTests",
            dependencies: ["TestSupport", "StatetoolKit", "StateStream", "MigrationFile", "VirtiofsdState"]
        ),
        // Replays every input kept in Fuzz/Corpus through its fuzz target.
        .testTarget(
            name: "FuzzCorpusTests",
            dependencies: ["TestSupport", "FuzzTargets"]
        ),
        // End-to-end tests: run the built `statetool` binary the way a user does.
        .testTarget(
            name: "statetoolTests",
            dependencies: [
                "TestSupport", "statetool", "StatetoolKit", "VirtiofsdState", "VhostUser", "StateStream",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
    ]
)
