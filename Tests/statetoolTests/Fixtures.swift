import Foundation
import TestSupport

/// The real QEMU 10.0 + virtiofsd 1.13.2 fixtures in `Tests/Fixtures/qemu-virtiofsd`.
enum Fixtures {
    static let directory = Repository.fixtures

    /// `state/NAME.state`: the stream cut out of a migration file.
    static func state(_ name: String) -> String {
        Repository.fixtureState(name)
    }

    /// One capture of MANIFEST.md's table: where its state sits in its migration file.
    struct Capture: Sendable {
        let name: String
        let sectionOffset: UInt64
        let headerOffset: UInt64
        let streamOffset: UInt64
        let streamEnd: UInt64
        let chunks: Int
        let payloadBytes: UInt64
        let fileSize: UInt64
    }

    static let captures = [
        Capture(name: "s1-A-running", sectionOffset: 63851239, headerOffset: 63896898, streamOffset: 63896925, streamEnd: 64135397, chunks: 4, payloadBytes: 238452, fileSize: 64181491),
        Capture(name: "s1-B-stopped-nochange", sectionOffset: 63604959, headerOffset: 63650618, streamOffset: 63650645, streamEnd: 63889117, chunks: 4, payloadBytes: 238452, fileSize: 63935211),
        Capture(name: "s1-C-relookup", sectionOffset: 63613149, headerOffset: 63658808, streamOffset: 63658835, streamEnd: 63897307, chunks: 4, payloadBytes: 238452, fileSize: 63943401),
        Capture(name: "s1-D-more-open", sectionOffset: 63937342, headerOffset: 63983001, streamOffset: 63983028, streamEnd: 64221672, chunks: 4, payloadBytes: 238624, fileSize: 64267766),
        Capture(name: "s1-E-resaved-on-dst", sectionOffset: 63600864, headerOffset: 63646523, streamOffset: 63646550, streamEnd: 63885022, chunks: 4, payloadBytes: 238452, fileSize: 63931116),
        Capture(name: "s2-verify-handles", sectionOffset: 63793810, headerOffset: 63839469, streamOffset: 63839496, streamEnd: 64135414, chunks: 5, payloadBytes: 295894, fileSize: 64181508),
        Capture(name: "s3-file-handles", sectionOffset: 63904582, headerOffset: 63950241, streamOffset: 63950268, streamEnd: 64035310, chunks: 2, payloadBytes: 85030, fileSize: 64081403),
    ]

    /// `migration/s1-A-running.mig.zst`, the one migration file stored whole.
    static let compressedMigrationFile = directory.appendingPathComponent("migration/s1-A-running.mig.zst").path

    private static let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("statetool-fixtures-\(getpid())")
    /// The captures decompressed so far. NSLock (a pthread mutex) rather than
    /// Synchronization's Mutex, whose futex ThreadSanitizer cannot see.
    nonisolated(unsafe) private static var decompressed: Set<String> = []
    private static let lock = NSLock()

    /// The uncompressed migration file of capture `name`, decompressed once per
    /// test run (the others are zstd patches against s1-A's).
    static func migrationFile(_ name: String) throws -> String {
        let base = scratch.appendingPathComponent("s1-A-running.mig").path
        let target = scratch.appendingPathComponent("\(name).mig").path
        try lock.withLock {
            if decompressed.isEmpty {
                removeLeftovers()
                try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
                // 430 MB of decompressed captures per run: gone when the test process ends.
                atexit { try? FileManager.default.removeItem(at: Fixtures.scratch) }
                try zstd(["-d", "-q", "-f", compressedMigrationFile, "-o", base])
                decompressed.insert("s1-A-running")
            }
            if !decompressed.contains(name) {
                let patch = directory.appendingPathComponent("migration/\(name).mig.patch-from-s1-A.zst").path
                try zstd(["-d", "-q", "-f", "--long=27", "--patch-from=\(base)", patch, "-o", target])
                decompressed.insert(name)
            }
        }
        return target
    }

    /// Removes the scratch folders of earlier test processes that are gone
    /// (killed before their exit handler ran).
    private static func removeLeftovers() {
        let temporary = FileManager.default.temporaryDirectory
        for name in (try? FileManager.default.contentsOfDirectory(atPath: temporary.path)) ?? [] where name.hasPrefix("statetool-fixtures-") {
            guard let pid = Int32(name.dropFirst("statetool-fixtures-".count)), kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? FileManager.default.removeItem(at: temporary.appendingPathComponent(name))
        }
    }

    private static func zstd(_ arguments: [String]) throws {
        guard try Peer.run("/usr/bin/zstd", arguments).status == 0 else { throw CocoaError(.fileReadCorruptFile) }
    }
}
