import Foundation
import MigrationFile
import StateStream
import StatetoolKit
import SystemPackage
import TestSupport
import Testing

/// `migration ram`'s library: RAM blocks written as sparse files from built
/// migration files (QEMU's `migration/ram.c` record layout: be64 address |
/// flags, a block name unless CONTINUE, a page or a fill byte).
@Suite final class RAMExtractionTests {
    let scratch: ScratchDirectory

    init() throws {
        scratch = try ScratchDirectory("ram")
    }

    static func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xff)] }
    static func be32(_ value: UInt32) -> [UInt8] { (0..<4).reversed().map { UInt8(value >> (8 * UInt32($0)) & 0xff) } }
    static func be64(_ value: UInt64) -> [UInt8] { (0..<8).reversed().map { UInt8(value >> (8 * UInt64($0)) & 0xff) } }
    static func name(_ text: String) -> [UInt8] { [UInt8(text.utf8.count)] + Array(text.utf8) }

    static let pageBits: UInt32 = 10
    static let page = 1024

    /// QEVM, version 3, the configuration (`pc-q35-10.0`, target-page-bits 10).
    static var head: [UInt8] {
        be32(0x5145_564D) + be32(3) + [0x07] + be32(11) + Array("pc-q35-10.0".utf8)
            + [0x05] + name("configuration/target-page-bits") + be32(1) + be32(pageBits)
    }

    static func pattern(_ seed: UInt8) -> [UInt8] { (0..<page).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(seed)) } }

    /// Two blocks, `mem` (8 pages) and `../x` (1 page). `mem`'s page 2 is sent
    /// with data, then again as a zero page in the END record; page 5 is a zero
    /// page with fill 0x11.
    static var file: [UInt8] {
        var bytes = head
        bytes += [0x01] + be32(0) + name("ram") + be32(0) + be32(4)
        bytes += be64(9 * 1024 | 0x04) + name("mem") + be64(8 * 1024) + name("../x") + be64(1024)
        bytes += be64(0 | 0x08) + name("mem") + pattern(1)
        bytes += be64(1024 | 0x02 | 0x20) + [0]
        bytes += be64(2048 | 0x08 | 0x20) + pattern(2)
        bytes += be64(5 * 1024 | 0x02 | 0x20) + [0x11]
        bytes += be64(0x10) + [0x7e] + be32(0)
        bytes += [0x03] + be32(0)
        bytes += be64(2048 | 0x02) + name("mem") + [0]
        bytes += be64(0 | 0x08) + name("../x") + pattern(3)
        bytes += be64(0x10) + [0x7e] + be32(0)
        bytes += [0x00]
        return bytes
    }

    func write(_ bytes: [UInt8], to name: String) throws -> String {
        let path = scratch.path(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Whether any byte of `range` in the file at `path` is data (not a hole).
    static func holdsData(_ path: String, _ range: Range<Int64>) throws -> Bool {
        let file = try FileDescriptor.open(FilePath(path), .readOnly)
        defer { try? file.close() }
        let found = lseek(file.rawValue, off_t(range.lowerBound), 3)  // SEEK_DATA, which Glibc's module hides
        return found >= 0 && found < range.upperBound
    }

    @Test func eachBlockIsItsPagesAtTheirAddresses() throws {
        let path = try write(Self.file, to: "built.mig")
        let folder = scratch.path("out")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let written = try RAMExtraction(input: try Input.open(path), directory: folder).run()
        #expect(written.map(\.block.name) == ["mem", "../x"])
        #expect(written.map(\.path) == ["\(folder)/mem", "\(folder)/..%2Fx"])
        #expect(written.map(\.dataPages) == [2, 1])
        #expect(written.map(\.zeroPages) == [3, 0])

        let mem = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(folder)/mem")))
        var expected = [UInt8](repeating: 0, count: 8 * 1024)
        expected.replaceSubrange(0..<1024, with: Self.pattern(1))
        expected.replaceSubrange(5 * 1024..<6 * 1024, with: [UInt8](repeating: 0x11, count: 1024))
        #expect(mem == expected)
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(folder)/..%2Fx")) == Data(Self.pattern(3)))
        // Nothing outside the folder.
        #expect(!FileManager.default.fileExists(atPath: scratch.path("x")))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == ["..%2Fx", "mem"])
    }

    @Test func oneBlockAndAnUnknownOne() throws {
        let path = try write(Self.file, to: "built.mig")
        let folder = scratch.path("one")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let written = try RAMExtraction(input: try Input.open(path), directory: folder, block: "../x").run()
        #expect(written.map(\.block.name) == ["../x"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["..%2Fx"])
        #expect(throws: RAMExtraction.Failure.self) { try RAMExtraction(input: try Input.open(path), directory: folder, block: "rom").run() }
    }

    /// A cut file commits nothing.
    @Test func aCutFileLeavesNothing() throws {
        let path = try write(Array(Self.file.prefix(Self.file.count - 400)), to: "cut.mig")
        let folder = scratch.path("cut")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        #expect(throws: RAMExtraction.Failure.self) { try RAMExtraction(input: try Input.open(path), directory: folder).run() }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty)
    }

    /// A guest's RAM as QEMU writes it: long runs of consecutive pages (which
    /// cross the walk's 1 MiB buffer, and are written from it without being
    /// copied), broken by zero pages, a page sent again later with other
    /// bytes, and a run ending at the block's end. Every page lands at its
    /// address, the later record of a page wins, zero pages stay holes.
    @Test func longRunsOfPagesAreWrittenWhole() throws {
        let pages = 3000
        var bytes = Self.head
        bytes += [0x01] + Self.be32(0) + Self.name("ram") + Self.be32(0) + Self.be32(4)
        bytes += Self.be64(UInt64(pages * Self.page) | 0x04) + Self.name("mem") + Self.be64(UInt64(pages * Self.page))
        var expected = [UInt8](repeating: 0, count: pages * Self.page)
        for index in 0..<pages {
            let address = UInt64(index * Self.page)
            let flags: UInt64 = index == 0 ? 0 : 0x20
            let name = index == 0 ? Self.name("mem") : []
            if index % 700 >= 690 {  // ten zero pages: a whole file-system block among them
                bytes += Self.be64(address | 0x02 | flags) + name + [0]
            } else {
                let data = Self.pattern(UInt8(truncatingIfNeeded: index))
                bytes += Self.be64(address | 0x08 | flags) + name + data
                expected.replaceSubrange(index * Self.page..<(index + 1) * Self.page, with: data)
            }
        }
        // Pages 10 and 11 again, with other bytes.
        for index in 10..<12 {
            let data = [UInt8](repeating: UInt8(index), count: Self.page)
            bytes += Self.be64(UInt64(index * Self.page) | 0x08 | (index == 10 ? 0 : 0x20)) + (index == 10 ? Self.name("mem") : []) + data
            expected.replaceSubrange(index * Self.page..<(index + 1) * Self.page, with: data)
        }
        bytes += Self.be64(0x10) + [0x7e] + Self.be32(0) + [0x00]
        let path = try write(bytes, to: "runs.mig")
        let folder = scratch.path("runs")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let written = try RAMExtraction(input: try Input.open(path), directory: folder).run()
        #expect(written.map(\.dataPages) == [UInt64(pages - 40 + 2)])
        #expect(written.map(\.zeroPages) == [40])
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(folder)/mem"))) == expected)
        #expect(try !Self.holdsData("\(folder)/mem", Int64(692 * Self.page)..<Int64(696 * Self.page)))
        #expect(try Self.holdsData("\(folder)/mem", Int64(689 * Self.page)..<Int64(690 * Self.page)))
    }

    @Test(arguments: [("pc.ram", "pc.ram"), ("/rom@etc/acpi/tables", "%2From@etc%2Facpi%2Ftables"), ("..", "%2E%2E"), (".", "%2E"), ("", "%"), ("a%b", "a%25b")])
    func blockNamesBecomeSafeFileNames(name: String, file: String) {
        #expect(RAMExtraction.fileName(for: name) == file)
    }

    /// A mapped-ram file: the bitmap's set bits are the pages copied; the others stay holes.
    @Test func mappedRAMPagesAreCopiedFromTheirPlace() throws {
        let pageSize = 4096
        var bytes = Self.be32(0x5145_564D) + Self.be32(3) + [0x07] + Self.be32(11) + Array("pc-q35-10.0".utf8)
        bytes += [0x05] + Self.name("configuration/capabilities") + Self.be32(1) + Self.be32(1) + Self.name("mapped-ram")
        bytes += [0x01] + Self.be32(0) + Self.name("ram") + Self.be32(0) + Self.be32(4)
        let blockLength = UInt64(4 * pageSize)
        bytes += Self.be64(blockLength | 0x04) + Self.name("pc.ram") + Self.be64(blockLength)
        let bitmapOffset = UInt64(bytes.count + 28)
        let pagesOffset = UInt64(1 << 20)
        bytes += Self.be32(1) + Self.be64(UInt64(pageSize)) + Self.be64(bitmapOffset) + Self.be64(pagesOffset)
        bytes += [0b0000_1101] + [UInt8](repeating: 0, count: 7)  // pages 0, 2 and 3
        bytes += [UInt8](repeating: 0, count: Int(pagesOffset) - bytes.count)
        for index in 0..<4 { bytes += [UInt8](repeating: UInt8(0xA0 + index), count: pageSize) }
        bytes += Self.be64(0x10) + [0x7e] + Self.be32(0) + [0x00]
        let path = try write(bytes, to: "mapped.mig")
        let folder = scratch.path("mapped")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let written = try RAMExtraction(input: try Input.open(path), directory: folder).run()
        #expect(written.map(\.dataPages) == [3])
        let ram = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(folder)/pc.ram")))
        #expect(ram == [UInt8](repeating: 0xA0, count: pageSize) + [UInt8](repeating: 0, count: pageSize)
            + [UInt8](repeating: 0xA2, count: pageSize) + [UInt8](repeating: 0xA3, count: pageSize))
        #expect(try !Self.holdsData("\(folder)/pc.ram", Int64(pageSize)..<Int64(2 * pageSize)))
    }
}
