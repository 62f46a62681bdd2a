import Foundation
import StatetoolKit
import TestSupport
import Testing

/// `migration show --used-rings`: each virtqueue's used index read from the
/// guest's RAM in the file, and `last_avail_idx` checked against it as QEMU's
/// `virtio_load` does, on the real QEMU 10.0 file (the guest ran: its rings
/// are real) and on a copy with one `last_avail_idx` pushed too far.
@Suite final class UsedRingCommandTests {
    let scratch: ScratchDirectory

    init() throws {
        scratch = try ScratchDirectory("used-rings")
    }

    /// s1-A's vhost-user-fs section, and queue 1's be16 `last_avail_idx` (5346) in it.
    static let fs: UInt32 = 38
    static let lastAvailableIndexOffset = 63_851_690

    static func sizeWarnings(_ file: String) -> [String] { [
        "\(file): warning: virtqueue-size at offset 63851662: virtqueue 0 has 1024 entries, more than QEMU's default queue-size 128: QEMU 11.1 refuses it (VQ 0 vring.num 1024 exceeds allocated max 128)",
        "\(file): warning: virtqueue-size at offset 63851678: virtqueue 1 has 1024 entries, more than QEMU's default queue-size 128: QEMU 11.1 refuses it (VQ 1 vring.num 1024 exceeds allocated max 128)",
    ] }

    /// The used rings at 0x6384840 and 0x638c840 (guest memory below 2 GiB of a
    /// 256 MiB q35 guest: their offsets in block `mem`) hold idx 0 and 5346, the
    /// queues' last_avail_idx: nothing in flight, nothing to report.
    @Test func theRealFileReadsItsUsedIndexesFromItsRAM() throws {
        let file = try Fixtures.migrationFile("s1-A-running")
        let report = try MigrationShowReport(file: file, input: try Input.open(file), readsUsedRings: true)
        #expect(report.usedIndexes == [Self.fs: [0: 0, 1: 5346]])
        #expect(report.virtio[Self.fs]?.queues.map(\.lastAvailableIndex) == [0, 5346])
        let result = try StatetoolRunner.run(["migration", "show", "--used-rings", "--device", "38", file])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").map(String.init) == Self.sizeWarnings(file))
        #expect(result.stdout.contains(
            "    queue 1: size 1024 @63851678, desc 0x6388000, avail 0x638c000, used 0x638c840, last_avail_idx 5346 @63851690, used_idx 5346, vector 2\n"))

        let json = try StatetoolRunner.run(["migration", "show", "--used-rings", "--device", "38", "--json", file])
        #expect(json.status == 0)
        let device = try #require((try json.jsonObject()["devices"] as? [[String: Any]])?.first)
        let queues = try #require((device["virtio"] as? [String: Any])?["queues"] as? [[String: Any]])
        #expect(queues.map { $0["usedIndex"] as? Int } == [0, 5346])
    }

    /// last_avail_idx 5346 + 1025: one more request in flight than queue 1's
    /// 1024 entries, which QEMU refuses; without --used-rings nothing tells.
    @Test func aLastAvailableIndexTooFarAheadIsVirtqueueInUse() throws {
        var bytes = try Data(contentsOf: URL(fileURLWithPath: try Fixtures.migrationFile("s1-A-running")))
        let damaged = UInt16(5346 + 1025)
        bytes[Self.lastAvailableIndexOffset] = UInt8(damaged >> 8)
        bytes[Self.lastAvailableIndexOffset + 1] = UInt8(damaged & 0xff)
        let file = scratch.path("in-use.mig")
        try bytes.write(to: URL(fileURLWithPath: file))
        let result = try StatetoolRunner.run(["migration", "show", "--used-rings", "--device", "38", file])
        #expect(result.status == 1)
        #expect(result.stderr.split(separator: "\n").map(String.init) == Self.sizeWarnings(file) + [
            "\(file): error: virtqueue-in-use at offset 63851690: virtqueue 1: last_avail_idx 0x18e3 is 1025 past used_idx 0x14e2, more than its 1024 entries (VQ 1 size 0x400 < last_avail_idx 0x18e3 - used_idx 0x14e2)",
        ])
        let unchecked = try StatetoolRunner.run(["migration", "show", "--device", "38", file])
        #expect(unchecked.status == 0)
    }

    /// A compressed file cannot be read a second time for its RAM: exit status 2, said so.
    @Test func aCompressedFileIsRefused() throws {
        let result = try StatetoolRunner.run(["migration", "show", "--used-rings", Fixtures.compressedMigrationFile])
        #expect(result.status == 2)
        #expect(result.stderr.hasSuffix(
            "\(Fixtures.compressedMigrationFile): error: the used rings are read from the guest's RAM in a second pass: give the regular, uncompressed file\n"))
    }
}
