import Foundation
import MigrationFile
import StateStream
import Testing

/// Reading from the end: the device sections placed from the JSON
/// description, the same states and problems as the walk of every byte, far
/// fewer bytes read, and a walk (with its reason) wherever a placement does not
/// check out.
@Suite struct TailPlacementTests {
    /// What a reading of `bytes`, written to a regular file, gave.
    struct Read {
        var record: WalkRecord
        var reading: MigrationReading
    }

    private func read(_ bytes: [UInt8], strategy: ReadingStrategy = .placeFromEnd) throws -> Read {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("statetool-tail-\(UUID().uuidString).mig").path
        defer { unlink(path) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let reader = MigrationFileReader(input: try StateStreamInput(path: path), strategy: strategy)
        let record = try WalkRecord.walk(with: reader)
        return Read(record: record, reading: try #require(reader.reading))
    }

    /// The back-end states and problems both paths can see.
    private func expectSameStatesAndProblems(_ tail: Read, _ walk: Read, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(tail.record.framed == walk.record.framed, sourceLocation: sourceLocation)
        #expect(tail.record.survey.backEndStates == walk.record.survey.backEndStates, sourceLocation: sourceLocation)
        #expect(tail.record.survey.problems == walk.record.survey.problems, sourceLocation: sourceLocation)
    }

    @Test func theDeviceSectionsArePlacedFromTheEndAndReadAlone() throws {
        let sample = SampleMigrationFile()
        let tail = try read(sample.bytes)
        let walk = try read(sample.bytes, strategy: .fullWalk)
        #expect(tail.reading.path == .tail && tail.reading.reason == nil)
        #expect(tail.reading.placedSections == 2)  // virtio-net, then vhost-user-fs; the timer before them is not needed
        #expect(tail.reading.resumedAt == sample.mark("fs section"))
        #expect(walk.reading == MigrationReading(
            path: .walk, reason: "a full walk was asked for", placedSections: 0, resumedAt: nil, bytesRead: UInt64(sample.bytes.count)))
        expectSameStatesAndProblems(tail, walk)
        #expect(tail.record.framed["0000:00:01.0/vhost-user-fs"] == sample.fsStream)
        #expect(tail.record.framed["0000:00:02.0/virtio-net"] == sample.netStream)
        #expect(tail.record.survey.problems.isEmpty)
        // The walk resumed at the first placed section: RAM and the timer were passed over.
        #expect(tail.record.events == walk.record.events.filter { event in
            !event.hasPrefix("section 0 ") && !event.hasPrefix("section 1 ")
        })
        #expect(tail.record.survey.configuration == walk.record.survey.configuration)
        #expect(tail.record.survey.endOfFileOffset == walk.record.survey.endOfFileOffset)
    }

    /// A 16 MiB file: the tail path reads the last 64 KiB (for the description),
    /// the few bytes of each placement, the 6 bytes compression detection
    /// sniffed and one 4 KiB read of the head, and the placed sections with the
    /// description; nothing of the RAM.
    @Test func theTailPathReadsABoundedNumberOfBytes() throws {
        let sample = SampleMigrationFile(ramPages: 16 << 10)
        #expect(sample.bytes.count > 16 << 20)
        let tail = try read(sample.bytes)
        let walk = try read(sample.bytes, strategy: .fullWalk)
        #expect(tail.reading.path == .tail)
        expectSameStatesAndProblems(tail, walk)
        let resumed = try #require(tail.reading.resumedAt)
        let placedAndAfter = UInt64(sample.bytes.count) - resumed
        let header = 37 + 5 + 40 + 5 + 27 + 3 * 4 + 1  // two headers and footers, the fs subsection header, its 3 lengths, the footer before
        #expect(tail.reading.bytesRead == 64 << 10 + UInt64(header) + 6 + 4096 + placedAndAfter, "read \(tail.reading.bytesRead)")
        // The walk reads nearly every byte: only a page that crosses its buffer is passed over by seeking.
        #expect(walk.reading.bytesRead > UInt64(sample.bytes.count) / 100 * 99)
    }

    @Test func whatDoesNotCheckOutIsWalkedAndSaysWhy() throws {
        let sample = SampleMigrationFile()
        let fsFooter = Int(sample.mark("fs footer"))
        let cases: [(name: String, bytes: [UInt8], reason: String)] = [
            ("no description", SampleMigrationFile(description: false).bytes, "no JSON description ends the file"),
            ("a described size one too large", SampleMigrationFile(fsStateSize: sample.fsStream.count + 1).bytes,
             "no FULL header of 0000:00:01.0/vhost-user-fs, instance 0, version 0 at offset \(sample.mark("fs section") - 1), where the JSON description puts it"),
            ("a footer that names another section", { var bytes = sample.bytes; bytes[fsFooter + 4] = 9; return bytes }(),
             "no footer of section 2 (0000:00:01.0/vhost-user-fs) at offset \(fsFooter), where the JSON description ends it"),
            ("no footer before the first placed section", { var bytes = sample.bytes; bytes[Int(sample.mark("fs section")) - 5] = 0x7d; return bytes }(),
             "no section footer ends the record before offset \(sample.mark("fs section")), where the first placed section starts"),
            ("a chunk length that overruns the state", { var bytes = sample.bytes; bytes[Int(sample.mark("fs stream")) + 3] = 0x2d; return bytes }(),
             "the chunk lengths of 0000:00:01.0/vhost-user-fs's state, from offset \(sample.mark("fs stream")), do not end at its described \(sample.fsStream.count) bytes"),
            ("no section footers at all", SampleMigrationFile(footers: false).bytes,
             "no FULL header of 0000:00:02.0/virtio-net, instance 0, version 11 at offset \(SampleMigrationFile(footers: false).mark("net section") - 5), where the JSON description puts it"),
        ]
        for damage in cases {
            let tail = try read(damage.bytes)
            let walk = try read(damage.bytes, strategy: .fullWalk)
            #expect(tail.reading.path == .walk, "\(damage.name)")
            #expect(tail.reading.reason == damage.reason, "\(damage.name)")
            #expect(tail.reading.bytesRead >= walk.reading.bytesRead, "\(damage.name)")
            expectSameStatesAndProblems(tail, walk)
        }
    }

    @Test func aDescriptionWithoutBackEndDevicesIsWalked() throws {
        var builder = MigrationFileBuilder()
        builder.configuration("pc-q35-10.0")
        builder.fullSection(id: 1, name: "timer", version: 2, body: Array(repeating: 0, count: 8))
        builder.endOfFile()
        builder.description("""
            {"page_size": 4096, "devices": [{"name": "timer", "instance_id": 0, "vmsd_name": "timer", "version": 2,
             "fields": [{"name": "a", "type": "int64", "size": 8}]}]}
            """)
        let tail = try read(builder.bytes)
        #expect(tail.reading.path == .walk)
        #expect(tail.reading.reason == "the JSON description names no device that holds a back-end state")
        #expect(tail.record.survey.sections.count == 1 && tail.record.survey.problems.isEmpty)
    }

    @Test func pipesAndCompressedFilesAreWalked() throws {
        let sample = SampleMigrationFile()
        let piped = MigrationFileReader(input: try StateStreamInput(source: ByteArraySource(sample.bytes)))
        _ = try WalkRecord.walk(with: piped)
        #expect(piped.reading?.path == .walk && piped.reading?.reason == "the input is no regular file")
        #expect(piped.reading?.bytesRead == UInt64(sample.bytes.count))
        let compressed = try zstdCompress(sample.bytes)
        let zstd = try read(compressed)
        #expect(zstd.reading.reason == "zstd-compressed input is read front to back")
        #expect(zstd.reading.bytesRead == UInt64(compressed.count))
        #expect(zstd.record.framed["0000:00:01.0/vhost-user-fs"] == sample.fsStream)
    }
}
