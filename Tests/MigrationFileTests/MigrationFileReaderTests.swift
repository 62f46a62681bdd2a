import Foundation
import TestSupport
import MigrationFile
import StateStream
import Testing

/// A small but complete migration file: 1 KiB pages, RAM whose pages hold
/// the byte patterns a search would trip on, a device section with fake
/// footers, a vhost-user-fs state, a vhost-user net state inside its
/// virtio-net section, a command, the EOF marker and a JSON description.
struct SampleMigrationFile {
    var builder: MigrationFileBuilder
    let fsChunks: [[UInt8]] = [Array(repeating: 0xAA, count: 300), Array(0..<200).map { UInt8($0) }]
    let netChunks: [[UInt8]] = [Array("net state".utf8)]
    let fsVirtio: [UInt8]
    let netBefore: [UInt8] = [0x05, 0x7e, 0, 0, 0, 3, 9, 9]
    let netAfter: [UInt8] = [0x7e, 0, 0, 0, 3, 0x42, 1, 2, 3]

    var bytes: [UInt8] { builder.bytes }
    func mark(_ name: String) -> UInt64 { UInt64(builder.marks[name]!) }
    var fsHeader: [UInt8] { MigrationFileBuilder.subsectionHeader("vhost-user-fs-backend") }
    var fsStream: [UInt8] { MigrationFileBuilder.stream(fsChunks) }
    var netStream: [UInt8] { MigrationFileBuilder.stream(netChunks) }

    /// - Parameter ramPages: 1 KiB pages of RAM added in a PART record, to make the file large.
    init(description: Bool = true, fsStateSize: Int? = nil, ignoreShared: Bool = false, footers: Bool = true, ramPages: Int = 0) {
        builder = MigrationFileBuilder(footers: footers)
        fsVirtio = [0x05, 0x15, 0x7e, 0, 0, 0, 2, 0x01] + Array(repeating: 0x7e, count: 10)
        let trap = Array(fsHeader) + MigrationFileBuilder.stream([[1, 2, 3]]) + [0x7e, 0, 0, 0, 2, 0x00]
        let page = trap + Array(repeating: 0x7e, count: 1024 - trap.count)
        builder.configuration("pc-q35-10.0", pageBits: 10, capabilities: ignoreShared ? ["x-ignore-shared"] : [])
        builder.ramStart(
            id: 0, blocks: [("mem", 8 * 1024), ("pc.rom", 1024)], ignoreShared: ignoreShared,
            records: [.page(block: "mem", address: 0, page), .zero(block: nil, address: 1024), .flush])
        builder.ramContinuation(type: 0x02, id: 0, records: [
            .page(block: "pc.rom", address: 0, Array(repeating: 0x05, count: 1024)),
            .xbzrle(block: "mem", address: 2048, [0x7e, 0, 0, 0, 0, 0x04]),
        ])
        if ramPages > 0 {
            builder.ramContinuation(type: 0x02, id: 0, records: (0..<ramPages).map { index in
                .page(block: index == 0 ? "mem" : nil, address: UInt64(index % 8) * 1024, Array(repeating: UInt8(truncatingIfNeeded: index), count: 1024))
            })
        }
        builder.command(0x0b)
        builder.ramContinuation(type: 0x03, id: 0, records: [.zero(block: "mem", address: 3072)])
        builder.fullSection(id: 1, name: "timer", version: 2, body: [0x7e, 0, 0, 0, 1, 0x99] + Array(repeating: 0, count: 18))
        builder.mark("fs section")
        builder.sectionHeader(type: 0x04, id: 2, name: "0000:00:01.0/vhost-user-fs", version: 0)
        builder.append(fsVirtio)
        builder.mark("fs header")
        builder.append(fsHeader)
        builder.mark("fs stream")
        builder.append(fsStream)
        builder.mark("fs footer")
        builder.footer(2)
        builder.mark("net section")
        builder.sectionHeader(type: 0x04, id: 3, name: "0000:00:02.0/virtio-net", version: 11)
        builder.append(netBefore)
        builder.mark("net header")
        builder.append(MigrationFileBuilder.subsectionHeader("virtio-net-device/backend"))
        builder.mark("net stream")
        builder.append(netStream)
        builder.append(netAfter)
        builder.footer(3)
        builder.endOfFile()
        if description {
            let stateSize = fsStateSize ?? fsStream.count
            builder.description("""
                {"page_size": 1024, "devices": [
                 {"name": "timer", "instance_id": 0, "vmsd_name": "timer", "version": 2,
                  "fields": [{"name": "a", "type": "int64", "size": 8, "array_len": 3}]},
                 {"name": "0000:00:01.0/vhost-user-fs", "instance_id": 0, "vmsd_name": "vhost-user-fs", "version": 0,
                  "fields": [{"name": "virtio", "type": "virtio", "size": \(fsVirtio.count)}],
                  "subsections": [{"vmsd_name": "vhost-user-fs-backend", "version": 0,
                   "fields": [{"name": "back-end", "type": "virtio-fs back-end state", "size": \(stateSize)}]}]},
                 {"name": "0000:00:02.0/virtio-net", "instance_id": 0, "vmsd_name": "virtio-net", "version": 11,
                  "fields": [{"name": "virtio", "type": "virtio", "size": \(netBefore.count + 31 + netStream.count + netAfter.count)}]}
                ]}
                """)
        }
    }
}

/// Everything a walk reported, with the embedded streams' bytes re-framed.
struct WalkRecord {
    var survey = MigrationFileSurvey()
    var framed: [String: [UInt8]] = [:]
    var events: [String] = []

    static func walk(_ bytes: [UInt8], readSizes: @escaping (Int) -> Int = { _ in .max }) throws -> WalkRecord {
        try walk(with: MigrationFileReader(input: StateStreamInput(source: ByteArraySource(bytes, readSizes: readSizes))))
    }

    static func walk(with reader: MigrationFileReader) throws -> WalkRecord {
        var record = WalkRecord()
        var device = ""
        try reader.walk { event in
            record.survey.record(event)
            switch event {
            case .backEndStateStart(let location):
                device = location.section.name
                record.framed[device] = []
            case .backEndState(.chunkStart(let chunk)):
                record.framed[device]! += MigrationFileBuilder.be32(chunk.length)
            case .backEndState(.payload(let bytes)):
                record.framed[device]! += bytes
            case .backEndState(.terminator):
                record.framed[device]! += [0, 0, 0, 0]
            case .section(let section):
                record.events.append("section \(section.section.id) \(section.type) @\(section.offset)+\(section.byteCount)")
            case .problem(let problem):
                record.events.append("problem \(problem)")
            default:
                break
            }
        }
        record.survey.finish()
        return record
    }
}

/// The migration walk under every split of its input (``SplitVerifier``):
/// the same sections, problems and embedded streams, whole or cut anywhere.
@Suite struct MigrationFileSplitTests {
    private struct Seen: Equatable {
        var events: [String]
        var framed: [String: [UInt8]]
        var problems: [MigrationProblem]
    }

    private func verify(_ bytes: [UInt8]) throws {
        let disagreement = try SplitVerifier.firstDisagreement(count: bytes.count) { split in
            let record = try WalkRecord.walk(bytes, readSizes: split.readSizes)
            return Seen(events: record.events, framed: record.framed, problems: record.survey.problems)
        }
        #expect(disagreement == nil, "\(disagreement.map { "\($0.split): \($0.got.events.last ?? "")" } ?? "")")
    }

    @Test func everySplitOfACompleteFileWalksTheSame() throws {
        try verify(SampleMigrationFile().bytes)
    }

    @Test func everySplitOfAFileCutInsideTheStateWalksTheSame() throws {
        let file = SampleMigrationFile()
        try verify(Array(file.bytes.prefix(Int(file.mark("fs stream")) + 100)))
    }
}

@Suite struct MigrationFileReaderTests {
    @Test func findsEveryBackEndStateAtItsExactOffsets() throws {
        let file = SampleMigrationFile()
        let record = try WalkRecord.walk(file.bytes)
        #expect(record.survey.problems == [])
        let states = record.survey.backEndStates
        try #require(states.count == 2)
        #expect(states[0].location.section == SectionIdentity(id: 2, name: "0000:00:01.0/vhost-user-fs", instanceID: 0, version: 0))
        #expect(states[0].location.sectionOffset == file.mark("fs section"))
        #expect(states[0].location.headerOffset == file.mark("fs header"))
        #expect(states[0].location.streamOffset == file.mark("fs stream"))
        #expect(states[0].length == UInt64(file.fsStream.count))
        #expect(states[0].describedLength == UInt64(file.fsStream.count))
        #expect(states[0].chunkCount == 2)
        #expect(states[0].payloadBytes == 500)
        #expect(states[1].location.subsection == .virtioNet)
        #expect(states[1].location.headerOffset == file.mark("net header"))
        #expect(states[1].location.streamOffset == file.mark("net stream"))
        #expect(record.framed["0000:00:01.0/vhost-user-fs"] == file.fsStream)
        #expect(record.framed["0000:00:02.0/virtio-net"] == file.netStream)
    }

    @Test func listsEverySectionWithItsRecordsAndSizes() throws {
        let file = SampleMigrationFile()
        let survey = try WalkRecord.walk(file.bytes).survey
        #expect(survey.configuration == MigrationConfiguration(machineType: "pc-q35-10.0", targetPageBits: 10, capabilities: [], offset: 8))
        try #require(survey.sections.count == 4)
        #expect(survey.sections.map(\.identity.name) == ["ram", "timer", "0000:00:01.0/vhost-user-fs", "0000:00:02.0/virtio-net"])
        #expect(survey.sections.map(\.recordCount) == [3, 1, 1, 1])
        #expect(survey.sections.map(\.holdsBackEndState) == [false, false, true, true])
        #expect(survey.sections[0].offset == file.mark("ram"))
        #expect(survey.sections[1].offset == file.mark("section 1"))
        #expect(survey.sections[2].byteCount == file.mark("net section") - file.mark("fs section"))
        #expect(survey.sections[3].byteCount == file.mark("eof") - file.mark("net section"))
        let ramBytes = survey.sections[0].byteCount
        #expect(ramBytes == file.mark("section 1") - file.mark("ram"))  // the command between its records included
        #expect(survey.commands == [MigrationCommand(command: 0x0b, offset: survey.commands.first?.offset ?? 0, dataLength: 0)])
        #expect(survey.endOfFileOffset == file.mark("eof"))
        #expect(survey.descriptionRecord?.offset == file.mark("description"))
        #expect(survey.description?.devices.count == 3)
    }

    @Test func readSizesChangeNothing() throws {
        let file = SampleMigrationFile()
        let whole = try WalkRecord.walk(file.bytes)
        for size in [1, 2, 3, 5, 7, 64, 1023] {
            let pieces = try WalkRecord.walk(file.bytes, readSizes: { _ in size })
            #expect(pieces.events == whole.events, "read size \(size)")
            #expect(pieces.framed == whole.framed, "read size \(size)")
        }
        var generator = SystemRandomNumberGenerator()
        let sizes = (0..<4096).map { _ in Int.random(in: 1...40, using: &generator) }
        let random = try WalkRecord.walk(file.bytes, readSizes: { sizes[$0 % sizes.count] })
        #expect(random.events == whole.events)
        #expect(random.framed == whole.framed)
    }

    /// Every cut of the file is reported at the exact offset where it ends, or
    /// inside the stream it cuts.
    @Test func everyTruncationIsReportedWhereTheFileEnds() throws {
        let file = SampleMigrationFile()
        let streams = [
            file.mark("fs stream")..<file.mark("fs stream") + UInt64(file.fsStream.count),
            file.mark("net stream")..<file.mark("net stream") + UInt64(file.netStream.count),
        ]
        for cut in 0..<file.bytes.count {
            let survey = try WalkRecord.walk(Array(file.bytes.prefix(cut))).survey
            let error = survey.error
            let cutOffset = UInt64(cut)
            if cut < 4 {
                #expect(error == .notAMigrationFile(at: 0), "cut \(cut)")
            } else if cutOffset == file.mark("eof") + 1 {
                #expect(error == nil, "cut \(cut)")
                #expect(survey.problems == [.noDescription(at: cutOffset)])
            } else if let stream = streams.first(where: { $0.contains(cutOffset) }) {
                guard case .stateStream(_, let problem, let streamOffset)? = error else {
                    Issue.record("cut \(cut): \(String(describing: error))")
                    continue
                }
                #expect(streamOffset == stream.lowerBound)
                #expect(error!.offset <= cutOffset && error!.offset >= stream.lowerBound, "cut \(cut): \(problem)")
                #expect([.missingTerminator, .truncatedLength, .truncatedChunk].contains(problem.kind))
            } else {
                guard case .truncated(let offset, _)? = error else {
                    Issue.record("cut \(cut): \(String(describing: error))")
                    continue
                }
                #expect(offset == cutOffset, "cut \(cut)")
            }
        }
    }

    @Test func blockListWithIgnoreSharedCarriesAddresses() throws {
        let file = SampleMigrationFile(ignoreShared: true)
        let survey = try WalkRecord.walk(file.bytes).survey
        #expect(survey.problems == [])
        #expect(survey.configuration?.capabilities == ["x-ignore-shared"])
        #expect(survey.backEndStates.count == 2)
    }

    @Test func sizesAreCheckedAgainstTheDescription() throws {
        let file = SampleMigrationFile(fsStateSize: 99)
        let survey = try WalkRecord.walk(file.bytes).survey
        #expect(survey.problems.contains(.descriptionMismatch(
            device: "0000:00:01.0/vhost-user-fs", what: "a back-end state of", described: 99, actual: UInt64(file.fsStream.count))))
        #expect(survey.problems.contains(.descriptionMismatch(
            device: "0000:00:01.0/vhost-user-fs", what: "a section body of",
            described: UInt64(file.fsVirtio.count + file.fsHeader.count + 99),
            actual: UInt64(file.fsVirtio.count + file.fsHeader.count + file.fsStream.count))))
        #expect(survey.problems.count == 2)
    }

    @Test func corruptionsAreReportedAtTheirOffset() throws {
        let file = SampleMigrationFile()
        func firstError(_ change: (inout [UInt8]) -> Void) throws -> MigrationProblem? {
            var bytes = file.bytes
            change(&bytes)
            return try WalkRecord.walk(bytes).survey.error
        }
        let footer = Int(file.mark("fs footer"))
        #expect(try firstError { $0[footer] = 0x7f } == .badFooter(sectionID: 2, at: UInt64(footer)))
        #expect(try firstError { $0[footer + 4] = 9 } == .badFooter(sectionID: 2, at: UInt64(footer)))
        let timer = Int(file.mark("section 1"))
        #expect(try firstError { $0[timer] = 0x09 } == .unknownRecordType(0x09, at: UInt64(timer)))
        #expect(try firstError { $0[timer] = 0x02 } == .unknownSectionID(1, at: UInt64(timer)))
        #expect(try firstError { $0[0] = 0x52 } == .notAMigrationFile(at: 0))
        #expect(try firstError { $0[7] = 2 } == .unsupportedVersion(2, at: 4))
        // The first record of the RAM START section after its block list: a page; make it flags 0x01.
        let firstRecord = Int(file.mark("ram")) + 1 + 4 + 4 + 4 + 4 + 8 + (1 + 3 + 8) + (1 + 6 + 8)
        #expect(try firstError { $0[firstRecord + 7] = 0x01 } == .malformed("RAM record with flags 0x1", at: UInt64(firstRecord)))
        #expect(try firstError { $0[firstRecord + 7] = 0x80 } == .unsupported("RAM record with the RDMA hook flag", at: UInt64(firstRecord)))
        let trailing = try WalkRecord.walk(file.bytes + [1, 2, 3]).survey.error
        #expect(trailing == .trailingData(at: UInt64(file.bytes.count), byteCount: 3))
        var badJSON = file.bytes
        badJSON[Int(file.mark("description")) + 5] = UInt8(ascii: "[")
        guard case .badDescription(_, let offset)? = try WalkRecord.walk(badJSON).survey.error else {
            Issue.record("bad JSON not reported")
            return
        }
        #expect(offset == file.mark("description") + 5)
    }

    /// Without section footers (machine types before 2.4), device sections are
    /// delimited by the JSON description read ahead from a regular file.
    @Test func withoutFootersTheDescriptionDelimitsSections() throws {
        let file = SampleMigrationFile(footers: false)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("footerless-\(UUID().uuidString).mig").path
        try Data(file.bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let reader = MigrationFileReader(input: try StateStreamInput(path: path))
        #expect(try reader.describedAhead?.devices.count == 3)
        let survey = try MigrationFileSurvey.survey(reader)
        #expect(survey.problems == [])
        #expect(survey.sections.map(\.identity.name) == ["ram", "timer", "0000:00:01.0/vhost-user-fs", "0000:00:02.0/virtio-net"])
        // The vhost-user-fs state is parsed where the description puts it; virtio-net's is
        // inside a described field, skipped whole.
        #expect(survey.backEndStates.map(\.location.streamOffset) == [file.mark("fs stream")])
        #expect(survey.backEndStates.first?.length == UInt64(file.fsStream.count))
        #expect(survey.endOfFileOffset == file.mark("eof"))

        // Through a pipe nothing can be read ahead: the first device section stops the walk.
        let piped = try WalkRecord.walk(file.bytes).survey
        guard case .unsupported(_, let offset)? = piped.error else {
            Issue.record("no unsupported problem: \(String(describing: piped.error))")
            return
        }
        #expect(offset == file.mark("section 1"))
    }

    @Test func zstdCompressedFilesReadTheSame() throws {
        let file = SampleMigrationFile()
        let compressed = try zstdCompress(file.bytes)
        let record = try WalkRecord.walk(compressed)
        let plain = try WalkRecord.walk(file.bytes)
        #expect(record.events == plain.events)
        #expect(record.framed == plain.framed)
    }
}

/// Compresses with the zstd command-line tool.
func zstdCompress(_ bytes: [UInt8]) throws -> [UInt8] {
    Array(try ProcessRunner.run("/usr/bin/zstd", ["-q", "-c"], stdin: Data(bytes)).stdoutBytes)
}
