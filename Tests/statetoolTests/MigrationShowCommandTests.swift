import Foundation
import TestSupport
import Testing

/// `statetool migration show` on the real QEMU 10.0 file and on broken ones.
@Suite final class MigrationShowCommandTests {
    let scratch: ScratchDirectory

    init() throws {
        scratch = try ScratchDirectory("migration-show")
    }

    private func path(_ name: String) -> String { scratch.path(name) }

    static let fs = "0000:00:01.0/vhost-user-fs"

    /// Where s1-A's vhost-user-fs queue sizes are (QEMU's `virtio_save`: be32 vring.num).
    static let queueSizeOffsets: [UInt64] = [63_851_662, 63_851_678]

    @Test func theRealFileShowsEveryDeviceFromItsEnd() throws {
        let file = try Fixtures.migrationFile("s1-A-running")
        let result = try StatetoolRunner.run(["migration", "show", file, "-v"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first == "\(file): QEMU migration file, machine pc-q35-10.0, page size 4096, capabilities none")
        #expect(lines.contains("serial (section 21, instance 0, version 3) at offset 63841754"))
        #expect(lines.contains { $0.hasPrefix("  state.lcr ") && $0.hasSuffix(" 0x13    @63841779") })
        #expect(lines.contains { $0.hasPrefix("  env.regs[0] ") && $0.hasSuffix("0x000000000001ad40  @63818861") })
        // The ICH9 LPC's 16,384 uint8 of chip_config: one line of bytes, not 16,384.
        let zeros = Array(repeating: "00", count: 32).joined(separator: " ")
        #expect(lines.contains { $0.hasPrefix("  chip_config[16384] ") && $0.hasSuffix(" \(zeros) … (16384 bytes)  @63824693") })
        #expect(!lines.contains { $0.hasPrefix("  chip_config[0]") })
        #expect(lines.count < 4_000)
        #expect(lines.contains("    device config 40 bytes: vhost-user-fs tag \"myfs\", 1 request queue"))
        #expect(lines.contains("    queue 1: size 1024 @63851678, desc 0x6388000, avail 0x638c000, used 0x638c840, last_avail_idx 5346 @63851690, vector 2"))
        #expect(lines.filter { !$0.hasPrefix(" ") && $0.contains(" (section ") }.count == 31)
        // Read from the end: the device sections only, not the 64 MB of RAM.
        let stderr = result.stderr.split(separator: "\n").map(String.init)
        #expect(stderr.first == "\(file): placed 31 device sections from the end, resumed at offset 63818759; read 433283 bytes")
        #expect(stderr.dropFirst() == [
            "\(file): warning: virtqueue-size at offset 63851662: virtqueue 0 has 1024 entries, more than QEMU's default queue-size 128: QEMU 11.1 refuses it (VQ 0 vring.num 1024 exceeds allocated max 128)",
            "\(file): warning: virtqueue-size at offset 63851678: virtqueue 1 has 1024 entries, more than QEMU's default queue-size 128: QEMU 11.1 refuses it (VQ 1 vring.num 1024 exceeds allocated max 128)",
        ])
    }

    /// A destination with queue-size 128 refuses the file: exit status 1, an
    /// error per queue at its size's offset; with 1024 nothing is wrong.
    @Test func aGivenQueueSizeIsChecked() throws {
        let file = Fixtures.compressedMigrationFile
        let small = try StatetoolRunner.run(["migration", "show", file, "--device", Self.fs, "--queue-size", "128", "--json"])
        #expect(small.status == 1)
        let report = try small.jsonObject()
        let device = try #require((report["devices"] as? [[String: Any]])?.first)
        let virtio = try #require(device["virtio"] as? [String: Any])
        let findings = try #require(virtio["findings"] as? [[String: Any]])
        #expect(findings.map { $0["kind"] as? String } == ["virtqueue-size", "virtqueue-size"])
        #expect(findings.map { $0["severity"] as? String } == ["error", "error"])
        #expect(findings.map { $0["offset"] as? UInt64 } == Self.queueSizeOffsets)
        let queues = try #require(virtio["queues"] as? [[String: Any]])
        #expect(queues.map { $0["size"] as? Int } == [1024, 1024])
        #expect(queues.map { $0["sizeOffset"] as? UInt64 } == Self.queueSizeOffsets)
        // The used rings are read only when asked for (--used-rings).
        #expect(queues.map { $0["usedIndex"] is NSNull } == [true, true])
        #expect((virtio["fileSystem"] as? [String: Any])?["tag"] as? String == "myfs")
        #expect(report["queueSize"] as? Int == 128)
        #expect(report["valid"] as? Bool == false)

        let large = try StatetoolRunner.run(["migration", "show", file, "--device", "38", "--queue-size", "1024"])
        #expect(large.status == 0)
        #expect(large.stderr == "")
    }

    /// The same values whatever the input: raw (from its end), zstd, a pipe, a libvirt save image (offsets shifted by its header).
    @Test func everyInputPathGivesTheSameFields() throws {
        let raw = try Fixtures.migrationFile("s1-A-running")
        func devices(_ arguments: [String], stdin: Data? = nil) throws -> ([[String: Any]], String?) {
            let result = try StatetoolRunner.run(["migration", "show", "--json", "-q"] + arguments, stdin: stdin)
            #expect(result.status == 0, "\(arguments): \(result.stderr)")
            let report = try result.jsonObject()
            return (try #require(report["devices"] as? [[String: Any]]), (report["reading"] as? [String: Any])?["path"] as? String)
        }
        let (fromEnd, tail) = try devices([raw])
        let (compressed, walk) = try devices([Fixtures.compressedMigrationFile])
        let (piped, _) = try devices(["-"], stdin: try Data(contentsOf: URL(fileURLWithPath: raw)))
        #expect(tail == "tail")
        #expect(walk == "walk")
        #expect(fromEnd.count == 31)
        let same = try JSONSerialization.data(withJSONObject: fromEnd, options: .sortedKeys)
        #expect(try JSONSerialization.data(withJSONObject: compressed, options: .sortedKeys) == same)
        #expect(try JSONSerialization.data(withJSONObject: piped, options: .sortedKeys) == same)

        let image = path("s1-A.save")
        let header = LibvirtImageCommandTests.header(format: 0)
        try header.write(to: URL(fileURLWithPath: image))
        let appended = try ProcessRunner.run("/bin/sh", ["-c", "cat \"$1\" >> \"$2\"", "sh", raw, image])
        try #require(appended.status == 0)
        let (saved, _) = try devices([image, "--device", "serial"])
        let serial = try #require(fromEnd.first { $0["name"] as? String == "serial" })
        #expect(saved.first?["offset"] as? UInt64 == (serial["offset"] as? UInt64).map { $0 + UInt64(header.count) })
    }

    @Test func theDescriptionIsPrintedAsTheFileHoldsIt() throws {
        let file = Fixtures.compressedMigrationFile
        let result = try StatetoolRunner.run(["migration", "show", "--description", file])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdoutBytes.count == 45924 - 5 + 1)
        let description = try #require(try JSONSerialization.jsonObject(with: result.stdoutBytes) as? [String: Any])
        #expect((description["devices"] as? [Any])?.count == 31)
        #expect(description["page_size"] as? Int == 4096)

        let cut = path("cut.mig")
        try Data(try Data(contentsOf: URL(fileURLWithPath: StatetoolRunner.sample("two-devices.mig"))).prefix(5000)).write(to: URL(fileURLWithPath: cut))
        let none = try StatetoolRunner.run(["migration", "show", "--description", cut])
        #expect(none.status == 1)
        #expect(none.stderr.hasSuffix("\(cut): error: the file holds no JSON description\n"))
    }

    /// A device section broken in the middle: its fields up to the damage are
    /// shown, the problem names the field and its offset, the exit status is 1.
    @Test func aDamagedSectionShowsItsFieldsUpToTheDamage() throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixtures.migrationFile("s1-A-running"))))
        // serial's section: its footer (7e + be32 21) after its 11-byte body, at 63841774 + 11.
        let footer = 63_841_774 + 11
        #expect(bytes[footer] == 0x7e)
        bytes[footer] = 0x00
        let file = path("damaged.mig")
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        let result = try StatetoolRunner.run(["migration", "show", file, "--device", "serial", "--full-walk", "--json", "-q"])
        #expect(result.status == 1)
        let report = try result.jsonObject()
        let device = try #require((report["devices"] as? [[String: Any]])?.first)
        let fields = try #require(device["fields"] as? [[String: Any]])
        let state = try #require((fields.first?["value"] as? [String: Any])?["fields"] as? [[String: Any]])
        #expect(state.first { $0["name"] as? String == "lcr" }?["value"] as? Int == 0x13)
        #expect(!(report["problems"] as? [Any] ?? []).isEmpty)
    }

    @Test func anUnknownDeviceIsRefused() throws {
        let result = try StatetoolRunner.run(["migration", "show", StatetoolRunner.sample("two-devices.mig"), "--device", "nope"])
        #expect(result.status == 1)
        #expect(result.stderr.hasSuffix("error: no device section nope\n"))
        let usage = try StatetoolRunner.run(["migration", "show", "--description", "--json", StatetoolRunner.sample("two-devices.mig")])
        #expect(usage.status == 64)
    }
}
