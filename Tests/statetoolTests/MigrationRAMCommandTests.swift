import Foundation
import TestSupport
import Testing

/// `statetool migration ram` on the real QEMU 10.0 file.
@Suite final class MigrationRAMCommandTests {
    let scratch: ScratchDirectory

    init() throws {
        scratch = try ScratchDirectory("migration-ram")
    }

    private func folder(_ name: String) throws -> String {
        let path = scratch.path(name)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static let blocks: [(name: String, file: String, size: Int)] = [
        ("mem", "mem", 268_435_456), ("/rom@etc/acpi/tables", "%2From@etc%2Facpi%2Ftables", 131_072), ("pc.bios", "pc.bios", 262_144),
        ("pc.rom", "pc.rom", 131_072), ("/rom@etc/table-loader", "%2From@etc%2Ftable-loader", 4096), ("/rom@etc/acpi/rsdp", "%2From@etc%2Facpi%2Frsdp", 4096),
    ]

    @Test func everyBlockIsWrittenTheSameFromEveryInput() throws {
        let raw = try Fixtures.migrationFile("s1-A-running")
        let fromRaw = try folder("raw")
        let result = try StatetoolRunner.run(["migration", "ram", raw, "-o", fromRaw, "-q"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.split(separator: "\n").first == "RAM block mem: 268435456 bytes -> \(fromRaw)/mem (15388 data pages, 50212 zero pages)")
        for block in Self.blocks {
            let attributes = try FileManager.default.attributesOfItem(atPath: "\(fromRaw)/\(block.file)")
            #expect(attributes[.size] as? Int == block.size, "\(block.name)")
        }
        let fromZstd = try folder("zstd")
        #expect(try StatetoolRunner.run(["migration", "ram", Fixtures.compressedMigrationFile, "-o", fromZstd, "-q"]).status == 0)
        for block in Self.blocks {
            #expect(
                try Data(contentsOf: URL(fileURLWithPath: "\(fromRaw)/\(block.file)")) == Data(contentsOf: URL(fileURLWithPath: "\(fromZstd)/\(block.file)")),
                "\(block.name)")
        }

        // The rsdp block's one page, found in the file by its record (be64 address | PAGE, the block's name, the page).
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: raw)))
        let name = [UInt8(18)] + Array("/rom@etc/acpi/rsdp".utf8)
        var record: Int?
        var index = 200
        while index + name.count + 4096 < bytes.count, record == nil {
            if bytes[index] == name[0], Array(bytes[index..<index + name.count]) == name, bytes[index - 1] & 0x08 != 0 {
                record = index + name.count
            }
            index += 1
        }
        let page = try #require(record)
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(fromRaw)/%2From@etc%2Facpi%2Frsdp")) == Data(bytes[page..<page + 4096]))
    }

    @Test func oneBlockAndRefusals() throws {
        let file = Fixtures.compressedMigrationFile
        let one = try folder("one")
        let result = try StatetoolRunner.run(["migration", "ram", file, "-o", one, "--block", "pc.bios", "-q"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: one) == ["pc.bios"])

        let unknown = try StatetoolRunner.run(["migration", "ram", file, "-o", one, "--block", "nope", "-q"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("error: no RAM block nope; the file has mem, /rom@etc/acpi/tables, pc.bios, pc.rom, /rom@etc/table-loader, /rom@etc/acpi/rsdp"))

        let missing = try StatetoolRunner.run(["migration", "ram", file, "-o", scratch.path("absent"), "-q"])
        #expect(missing.status == 2)
    }
}
