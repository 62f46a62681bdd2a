import Foundation
import MigrationFile
import StateStream
import Testing

/// A mapped-ram file (QEMU 9.0 on): each RAM block's `MappedRamHeader`
/// places its bitmap and pages at file offsets, and the stream goes on after
/// the pages. Built here with a hole where the pages are.
struct MappedRAMFile {
    typealias B = MigrationFileBuilder
    let blockLength: UInt64
    let headerOffset: UInt64
    var bitmapOffset: UInt64 { headerOffset + 28 }
    let pagesOffset: UInt64
    let head: [UInt8]
    /// What follows the pages (the builder's own file header left out).
    let tail: [UInt8]
    /// Where the state stream starts in ``tail``.
    let streamInTail: UInt64
    let fsStream = B.stream([Array(repeating: 0x5A, count: 5000), Array("end".utf8)])

    /// `header` rewrites the 28-byte header (version, page size, bitmap, pages offsets) to test damage.
    init(blockLength: UInt64, header: ((UInt32, UInt64, UInt64, UInt64)) -> (UInt32, UInt64, UInt64, UInt64) = { $0 }) {
        self.blockLength = blockLength
        var builder = MigrationFileBuilder(footers: true)
        builder.configuration("pc-q35-10.0", pageBits: 12, capabilities: ["mapped-ram"])
        builder.sectionHeader(type: 0x01, id: 0, name: "ram", version: 4)
        builder.append(B.be64(blockLength | 0x04) + B.name("pc.ram") + B.be64(blockLength))
        headerOffset = UInt64(builder.bytes.count)
        let bitmapBytes = (blockLength / 4096 + 63) / 64 * 8
        pagesOffset = (headerOffset + 28 + bitmapBytes + (1 << 20) - 1) / (1 << 20) * (1 << 20)
        let fields = header((1, 4096, headerOffset + 28, pagesOffset))
        builder.append(B.be32(fields.0) + B.be64(fields.1) + B.be64(fields.2) + B.be64(fields.3))
        head = builder.bytes
        var rest = MigrationFileBuilder(footers: true)
        rest.append(B.be64(0x10))
        rest.footer(0)
        rest.mark("fs section")
        rest.sectionHeader(type: 0x04, id: 2, name: "0000:00:01.0/vhost-user-fs", version: 0)
        rest.append([0x05, 0x15, 0x7e, 0, 0, 0, 2, 0x01])
        rest.append(B.subsectionHeader("vhost-user-fs-backend"))
        rest.mark("fs stream")
        rest.append(fsStream)
        rest.footer(2)
        rest.endOfFile()
        let fileHeader = MigrationFormat.headerSize
        tail = Array(rest.bytes.dropFirst(fileHeader))
        streamInTail = UInt64(rest.marks["fs stream"]! - fileHeader)
    }

    /// Where the stream goes on: after the pages.
    var tailOffset: UInt64 { pagesOffset + blockLength }

    /// Writes the file with a hole for the bitmap and the pages.
    func write(to path: String) throws {
        try Data(head).write(to: URL(fileURLWithPath: path))
        let file = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try file.seek(toOffset: tailOffset)
        try file.write(contentsOf: tail)
        try file.close()
    }

    /// The bytes, zeros in the hole (for small blocks).
    var bytes: [UInt8] { head + Array(repeating: 0, count: Int(tailOffset) - head.count) + tail }
}

@Suite struct MappedRAMTests {
    @Test func aMappedRAMFileIsWalkedWithoutReadingItsPages() throws {
        let mapped = MappedRAMFile(blockLength: 4 << 30)  // a 4 GiB guest
        let path = "/tmp/statetool-mapped-ram-\(getpid()).mig"
        defer { unlink(path) }
        try mapped.write(to: path)
        let counting = CountingSource(try FileDescriptorSource(path: path))
        let survey = try MigrationFileSurvey.survey(MigrationFileReader(input: try StateStreamInput(source: counting)))
        #expect(survey.error == nil, "\(survey.problems)")
        #expect(survey.configuration?.capabilities == ["mapped-ram"])
        let state = try #require(survey.backEndStates.first)
        #expect(state.location.streamOffset == mapped.tailOffset + mapped.streamInTail)
        #expect(state.length == UInt64(mapped.fsStream.count) && state.isComplete)
        // A 4 GiB file, of which the walk read its head and its tail: two buffers at most.
        #expect(mapped.tailOffset > 4 << 30)
        #expect(counting.bytesRead <= 2 << 20, "read \(counting.bytesRead) bytes")
    }

    @Test func fromAPipeTheRegionIsReadAndDropped() throws {
        let mapped = MappedRAMFile(blockLength: 64 << 10)
        let record = try WalkRecord.walk(mapped.bytes, readSizes: { $0 % 3 == 0 ? 7 : 4096 })
        #expect(record.survey.error == nil)
        #expect(record.survey.backEndStates.first?.location.streamOffset == mapped.tailOffset + mapped.streamInTail)
    }

    @Test func aHeaderThatDoesNotPlaceItsBlockIsRefusedAtItsField() throws {
        func firstError(_ change: @escaping ((UInt32, UInt64, UInt64, UInt64)) -> (UInt32, UInt64, UInt64, UInt64)) throws -> MigrationProblem? {
            try WalkRecord.walk(MappedRAMFile(blockLength: 64 << 10, header: change).bytes).survey.error
        }
        let at = MappedRAMFile(blockLength: 64 << 10).headerOffset
        #expect(try firstError { ($0.0 + 1, $0.1, $0.2, $0.3) } == .unsupported("the mapped-ram header of RAM block pc.ram has version 2; QEMU writes 1", at: at))
        #expect(try firstError { ($0.0, 1024, $0.2, $0.3) } == .malformed("the mapped-ram header of RAM block pc.ram gives page size 1024, the file 4096", at: at + 4))
        #expect(try firstError { ($0.0, $0.1, $0.2 + 8, $0.3) } == .malformed("the mapped-ram header of RAM block pc.ram puts its bitmap at \(at + 36), not right after the header at \(at + 28)", at: at + 12))
        #expect(try firstError { ($0.0, $0.1, $0.2, $0.2) }?.kind == .malformed)
        #expect(try firstError { ($0.0, $0.1, $0.2, UInt64.max - 10) }?.offset == at + 20)
        // A file cut inside the pages: truncated there.
        let mapped = MappedRAMFile(blockLength: 64 << 10)
        let cut = Array(mapped.bytes.prefix(Int(mapped.pagesOffset) + 100))
        let error = try WalkRecord.walk(cut).survey.error
        #expect(error == .truncated(at: UInt64(cut.count), inside: "RAM block pc.ram's pages (mapped-ram, 65536 bytes from \(mapped.pagesOffset))"))
    }
}
