import Foundation
import MigrationFile
import StateStream
import TestSupport
import Testing

/// What a walk that keeps section bodies gave: the bodies, the description and its text.
struct KeptSections {
    var bodies: [SectionBody] = []
    var description: VMDescription?
    var descriptionText: [UInt8] = []
    var problems: [MigrationProblem] = []

    static func walk(_ input: StateStreamInput) throws -> KeptSections {
        var kept = KeptSections()
        try MigrationFileReader(input: input, keepsSectionBodies: true).walk { event in
            switch event {
            case .sectionBody(let body): kept.bodies.append(body)
            case .description(let description, _, _): kept.description = description
            case .descriptionText(let text, _): kept.descriptionText = text
            case .problem(let problem): kept.problems.append(problem)
            default: break
            }
        }
        return kept
    }

    static func walk(_ bytes: [UInt8], readSizes: @escaping (Int) -> Int = { _ in .max }) throws -> KeptSections {
        try walk(StateStreamInput(source: ByteArraySource(bytes, readSizes: readSizes)))
    }

    /// Every kept body decoded through its description entry.
    func decoded() throws -> [DecodedSection] {
        let description = try #require(description)
        return try bodies.map { FieldDecoder.decode($0, as: try #require(description.device(for: $0.section))) }
    }
}

/// The field decoder on built section bodies: every type, arrays, structs, subsections, damage.
@Suite struct FieldDecoderTests {
    static let be = MigrationFileBuilder.self
    static let identity = SectionIdentity(id: 7, name: "dev", instanceID: 0, version: 1)

    static func device(_ json: String) throws -> VMDescription.Device {
        try JSONDecoder().decode(VMDescription.Device.self, from: Data(json.utf8))
    }

    static func body(_ bytes: [UInt8], at offset: UInt64 = 1000, elided: [Range<UInt64>] = []) -> SectionBody {
        SectionBody(section: identity, sectionOffset: offset - 20, offset: offset, bytes: bytes, elided: elided)
    }

    static let everyType = """
        {"name": "dev", "instance_id": 0, "vmsd_name": "dev", "version": 1, "fields": [
         {"name": "u8", "type": "uint8", "size": 1},
         {"name": "u16", "type": "uint16 equal", "size": 2},
         {"name": "s32", "type": "int32 le", "size": 4},
         {"name": "s64", "type": "int64", "size": 8},
         {"name": "flag", "type": "bool", "size": 1},
         {"name": "wide", "type": "uint64", "size": 9},
         {"name": "regs", "array_len": 2, "type": "uint16", "size": 2},
         {"name": "ptrs", "type": "nullptr", "size": 1},
         {"name": "ptrs", "array_len": 2, "type": "uint8", "size": 1},
         {"name": "seg", "array_len": 2, "type": "struct", "struct": {"vmsd_name": "s", "version": 1,
           "fields": [{"name": "a", "type": "uint8", "size": 1}, {"name": "b", "type": "int8", "size": 1}]}, "size": 2},
         {"name": "q", "index": 0, "type": "struct", "struct": {"vmsd_name": "q", "version": 1,
           "fields": [{"name": "n", "type": "uint32", "size": 4}],
           "subsections": [{"vmsd_name": "q/x", "version": 3, "fields": [{"name": "x", "type": "bool", "size": 1}]}]}, "size": 12},
         {"name": "q", "index": 1, "type": "struct", "struct": {"vmsd_name": "q", "version": 1,
           "fields": [{"name": "n", "type": "uint32", "size": 4}]}, "size": 4},
         {"name": "tmp", "type": "tmp", "vmsd_name": "t", "version": 0, "fields": [{"name": "m", "type": "uint16", "size": 2}], "size": 2},
         {"name": "timer", "type": "timer", "size": 3}
        ],
        "subsections": [{"vmsd_name": "dev/more", "version": 2, "fields": [{"name": "cap", "type": "capability", "size": 4}]}]}
        """

    static var everyTypeBytes: [UInt8] {
        [0xfe] + be.be16(0x1234) + be.be32(0xffff_fffe) + be.be64(7) + [0x02] + Array(1...9)
            + be.be16(1) + be.be16(0xffff) + [0x30] + [4, 5]
            + [1, 0xff, 2, 0x80]
            + be.be32(9) + MigrationFileBuilder.subsectionHeader("q/x", version: 3) + [1] + be.be32(10)
            + be.be16(77) + [0xaa, 0xbb, 0xcc]
            + MigrationFileBuilder.subsectionHeader("dev/more", version: 2) + [3] + Array("abc".utf8)
    }

    @Test func everyTypeDecodesWithItsOffset() throws {
        let decoded = FieldDecoder.decode(Self.body(Self.everyTypeBytes), as: try Self.device(Self.everyType))
        #expect(decoded.problems.isEmpty)
        let contents = decoded.contents
        #expect(contents.fields.map(\.name) == ["u8", "u16", "s32", "s64", "flag", "wide", "regs", "ptrs", "seg", "q", "tmp", "timer"])
        #expect(contents.value(at: "u8") == DecodedValue(offset: 1000, byteCount: 1, content: .unsigned(0xfe)))
        #expect(contents.value(at: "u16")?.content == .unsigned(0x1234))
        #expect(contents.value(at: "s32") == DecodedValue(offset: 1003, byteCount: 4, content: .signed(-2)))
        #expect(contents.value(at: "s64")?.content == .signed(7))
        #expect(contents.value(at: "flag")?.content == .bool(true))
        #expect(contents.value(at: "wide")?.content == .bytes(Array(1...9)))
        #expect(contents.value(at: "regs")?.elements.map(\.content) == [.unsigned(1), .unsigned(0xffff)])
        #expect(contents.value(at: "regs[1]") == DecodedValue(offset: 1027, byteCount: 2, content: .unsigned(0xffff)))
        // A null pointer and the compressed segment after it: one array, as QEMU's analyzer merges them.
        #expect(contents.value(at: "ptrs")?.elements.map(\.content) == [.nullPointer, .unsigned(4), .unsigned(5)])
        #expect(contents.value(at: "ptrs")?.offset == 1029)
        #expect(contents.value(at: "seg[1].b") == DecodedValue(offset: 1035, byteCount: 1, content: .signed(-128)))
        #expect(contents.value(at: "q[0].n")?.content == .unsigned(9))
        #expect(contents.value(at: "q[0]/q/x.x") == DecodedValue(offset: 1049, byteCount: 1, content: .bool(true)))
        #expect(contents.value(at: "q[0]")?.structure?.subsections.map(\.version) == [3])
        #expect(contents.value(at: "q[1].n")?.content == .unsigned(10))
        #expect(contents.value(at: "tmp.m")?.content == .unsigned(77))
        #expect(contents.value(at: "timer")?.content == .bytes([0xaa, 0xbb, 0xcc]))
        let more = try #require(contents[subsection: "dev/more"])
        #expect(more.offset == 1059)
        #expect(more.version == 2)
        #expect(contents.value(at: "/dev/more.cap") == DecodedValue(offset: 1059 + 14, byteCount: 4, content: .capability("abc")))
    }

    /// The bytes end inside a field: everything before it is decoded, the
    /// problem names the field and its offset.
    @Test func aCutBodyKeepsTheFieldsBeforeTheCut() throws {
        let bytes = Array(Self.everyTypeBytes.prefix(46))
        let decoded = FieldDecoder.decode(Self.body(bytes), as: try Self.device(Self.everyType))
        #expect(decoded.problems == [.truncated(field: "q[0]/q/x", needed: 9, left: 6, at: 1040)])
        #expect(decoded.problems.first?.description == "field-truncated at offset 1040: field q[0]/q/x takes 9 bytes, the section has 6 left")
        #expect(decoded.contents.fields.map(\.name) == ["u8", "u16", "s32", "s64", "flag", "wide", "regs", "ptrs", "seg", "q"])
        #expect(decoded.contents.value(at: "q[0].n")?.content == .unsigned(9))
    }

    @Test func aMissingSubsectionAndLeftoverBytesAreProblems() throws {
        var bytes = Self.everyTypeBytes
        bytes[59] = 0x7e
        let decoded = FieldDecoder.decode(Self.body(bytes), as: try Self.device(Self.everyType))
        #expect(decoded.problems == [.missingSubsection("dev/more", found: 0x7e, at: 1059)])
        #expect(decoded.contents.fields.count == 12)

        let longer = FieldDecoder.decode(Self.body(Self.everyTypeBytes + [1, 2]), as: try Self.device(Self.everyType))
        #expect(longer.problems == [.unreadBytes(count: 2, at: 1077)])

        var renamed = Self.everyTypeBytes
        renamed[61] = UInt8(ascii: "x")
        #expect(FieldDecoder.decode(Self.body(renamed), as: try Self.device(Self.everyType)).problems
            == [.subsectionMismatch(expected: "dev/more", found: "xev/more", at: 1059)])
    }

    @Test func aNullPointerIsTheByte0x30() throws {
        var bytes = Self.everyTypeBytes
        bytes[29] = 0
        let decoded = FieldDecoder.decode(Self.body(bytes), as: try Self.device(Self.everyType))
        #expect(decoded.problems == [.badValue(field: "ptrs", what: "a null pointer is the byte 0x30, the file holds 00", at: 1029)])
    }

    /// An array QEMU compressed to a length far beyond the section: the
    /// elements there are decoded, then the cut is a problem, and nothing is
    /// allocated by the length.
    @Test func aHugeArrayLengthAllocatesNothing() throws {
        let device = try Self.device("""
            {"name": "dev", "instance_id": 0, "vmsd_name": "dev", "version": 1,
             "fields": [{"name": "a", "array_len": 4000000000000, "type": "uint8", "size": 1}]}
            """)
        let decoded = FieldDecoder.decode(Self.body([1, 2, 3]), as: device)
        #expect(decoded.contents.value(at: "a")?.elements.count == 3)
        #expect(decoded.problems == [.truncated(field: "a[3]", needed: 1, left: 0, at: 1003)])

        let empty = try Self.device("""
            {"name": "dev", "instance_id": 0, "vmsd_name": "dev", "version": 1,
             "fields": [{"name": "a", "array_len": 4000000000000, "type": "struct", "struct": {"vmsd_name": "e", "version": 0, "fields": []}, "size": 0}]}
            """)
        let many = FieldDecoder.decode(Self.body([]), as: empty)
        #expect(many.problems == [.tooManyValues(field: "a[\(FieldDecoder.maximumValueCount)]", at: 1000)])
    }

    /// The sample file: its timer's array, and the vhost-user-fs section with
    /// its `virtio` bytes and its back-end state left out of the kept body.
    @Test func theSampleFileDecodesWhateverHowItIsRead() throws {
        let sample = SampleMigrationFile()
        let whole = try KeptSections.walk(sample.bytes)
        #expect(whole.problems.isEmpty)
        #expect(whole.bodies.map(\.section.name) == ["timer", "0000:00:01.0/vhost-user-fs", "0000:00:02.0/virtio-net"])
        let decoded = try whole.decoded()
        #expect(decoded.allSatisfy { $0.problems.isEmpty })
        let timer = decoded[0].contents.value(at: "a")
        #expect(timer?.elements.map(\.content) == [.signed(0x7e00_0000_0199_0000), .signed(0), .signed(0)])
        #expect(timer?.offset == sample.mark("section 1") + 1 + 4 + 1 + 5 + 8)
        let fs = decoded[1].contents
        #expect(fs.value(at: "virtio")?.content == .bytes(sample.fsVirtio))
        let backEnd = try #require(fs.value(at: "/vhost-user-fs-backend.back-end"))
        #expect(backEnd == DecodedValue(offset: sample.mark("fs stream"), byteCount: UInt64(sample.fsStream.count), content: .elided))
        #expect(whole.bodies[1].elided == [sample.mark("fs stream")..<sample.mark("fs footer")])
        #expect(String(decoding: whole.descriptionText, as: UTF8.self).hasPrefix("{\"page_size\": 1024"))
        // The virtio-net stream sits inside the `virtio` field: kept with it.
        #expect(decoded[2].contents.value(at: "virtio")?.byteCount == UInt64(whole.bodies[2].bytes.count))

        // A byte at a time: the same bodies.
        let trickled = try KeptSections.walk(sample.bytes, readSizes: { _ in 1 })
        #expect(trickled.bodies == whole.bodies)
    }

    /// Arrays of integers are decoded in one pass; what is no scalar (a `bool` of 2 bytes)
    /// decodes element by element as before: every element its bytes, at its offset.
    @Test func arraysDecodeTheSameInOnePassOrElementByElement() throws {
        let device = try Self.device("""
            {"name": "dev", "instance_id": 0, "vmsd_name": "dev", "version": 1, "fields": [
             {"name": "b", "type": "bool", "size": 2, "array_len": 2},
             {"name": "w", "type": "uint16", "size": 2, "array_len": 3},
             {"name": "s", "type": "int8", "size": 1, "array_len": 2}]}
            """)
        let decoded = FieldDecoder.decode(Self.body([0, 1, 1, 0, 0x12, 0x34, 0, 0, 0xff, 0xff, 0xfe, 0x7f]), as: device)
        #expect(decoded.problems.isEmpty)
        #expect(decoded.contents.value(at: "b")?.elements == [
            DecodedValue(offset: 1000, byteCount: 2, content: .bytes([0, 1])), DecodedValue(offset: 1002, byteCount: 2, content: .bytes([1, 0])),
        ])
        #expect(decoded.contents.value(at: "w")?.elements.map(\.content) == [.unsigned(0x1234), .unsigned(0), .unsigned(0xffff)])
        #expect(decoded.contents.value(at: "w")?.elements.map(\.offset) == [1004, 1006, 1008])
        #expect(decoded.contents.value(at: "s")?.elements.map(\.content) == [.signed(-2), .signed(127)])
        #expect(decoded.contents.value(at: "s") == DecodedValue(offset: 1010, byteCount: 2, content: .elements([
            DecodedValue(offset: 1010, byteCount: 1, content: .signed(-2)), DecodedValue(offset: 1011, byteCount: 1, content: .signed(127)),
        ])))
        // One element short: decoded element by element, the problem at the missing one.
        let short = FieldDecoder.decode(Self.body([0, 1, 1, 0, 0x12, 0x34, 0, 0]), as: device)
        #expect(short.contents.value(at: "w")?.elements.map(\.content) == [.unsigned(0x1234), .unsigned(0)])
        #expect(short.problems == [.truncated(field: "w[2]", needed: 2, left: 0, at: 1008)])
    }

    /// What a walk keeps is capped: each section's first 16 MiB, 64 MiB for all together.
    /// Five sections of 17 MiB: the first four keep 16 MiB each and are not complete, the
    /// fifth keeps nothing; the walk itself reads on to the end (the file has no description: a warning).
    @Test func keptBodiesAreCappedPerSectionAndPerWalk() throws {
        var file = MigrationFileBuilder()
        file.configuration("pc-q35-10.0")
        let size = SectionBody.maximumKeptByteCount + (1 << 20)
        for id in UInt32(1)...5 {
            file.fullSection(id: id, name: "big\(id)", body: [UInt8](repeating: 0, count: size))
        }
        file.endOfFile()
        let kept = try KeptSections.walk(file.bytes)
        #expect(kept.problems.map(\.kind) == [.noDescription], "\(kept.problems)")
        #expect(kept.bodies.map(\.section.id) == [1, 2, 3, 4, 5])
        #expect(kept.bodies.map(\.bytes.count) == [16 << 20, 16 << 20, 16 << 20, 16 << 20, 0])
        #expect(kept.bodies.map(\.isComplete) == [false, false, false, false, false])
        #expect(kept.bodies.reduce(0) { $0 + $1.bytes.count } == SectionBody.maximumKeptByteCountPerWalk)
        #expect(kept.bodies.map(\.offset) == (1...5).map { UInt64(file.marks["section \($0)"]! + 1 + 4 + 1 + 4 + 4 + 4) })
    }

    /// A file cut inside a device section: its body so far is still sent, and decodes up to the cut.
    @Test func aCutSectionStillDecodesUpToTheCut() throws {
        let sample = SampleMigrationFile()
        let cut = Array(sample.bytes.prefix(Int(sample.mark("section 1")) + 1 + 4 + 1 + 5 + 8 + 12))
        let kept = try KeptSections.walk(cut)
        #expect(kept.problems.map(\.kind) == [.truncated])
        let body = try #require(kept.bodies.first)
        #expect(!body.isComplete)
        #expect(body.bytes.count == 12)
        let device = try #require(try VMDescription.decode(Array(sample.bytes[Int(sample.mark("description") + 5)...])).devices.first)
        let decoded = FieldDecoder.decode(body, as: device)
        #expect(decoded.contents.value(at: "a")?.elements.count == 1)
        #expect(decoded.problems == [.truncated(field: "a[1]", needed: 8, left: 4, at: body.offset + 8)])
    }
}

/// The field decoder on the real QEMU 10.0 file `s1-A-running`, cross-checked
/// against a small decoder of its own written from QEMU's sources.
@Suite struct FieldDecoderFixtureTests {
    static let path = Repository.fixtures.appendingPathComponent("migration/s1-A-running.mig.zst").path

    /// The decompressed file, through the project's own decompressing source.
    static func fileBytes() throws -> [UInt8] {
        let input = try StateStreamInput(path: path)
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = try buffer.withUnsafeMutableBytes { try input.framedSource.read(into: $0) }
            if count == 0 { break }
            bytes += buffer[0..<count]
        }
        return bytes
    }

    /// Where a FULL section's body starts, found by its header (`0x04`, be32
    /// id, u8 idstr length, idstr, be32 instance, be32 version), searching
    /// from `from`: QEMU's `save_section_header`.
    static func bodyOffset(of idstr: String, instance: UInt32 = 0, in bytes: [UInt8], from: Int) -> Int? {
        let name = [UInt8(idstr.utf8.count)] + Array(idstr.utf8) + MigrationFileBuilder.be32(instance)
        var index = from
        while index + name.count < bytes.count {
            if bytes[index] == 0x04, Array(bytes[index + 5..<index + 5 + name.count]) == name {
                return index + 5 + name.count + 4
            }
            index += 1
        }
        return nil
    }

    static func be32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
    }

    @Test func everyDeviceDecodesAndAgreesWithTheBytes() throws {
        let kept = try KeptSections.walk(try StateStreamInput(path: Self.path))
        #expect(kept.problems.isEmpty)
        let decoded = try kept.decoded()
        #expect(decoded.count == 31)
        for section in decoded {
            #expect(section.problems.isEmpty, "\(section.section.name): \(section.problems)")
        }
        let bytes = try Self.fileBytes()
        let devicesStart = Int(try #require(kept.bodies.first).sectionOffset)

        // serial (hw/char/serial.c vmstate_serial): divider be16, rbr, ier, iir, lcr.
        let serialBody = try #require(Self.bodyOffset(of: "serial", in: bytes, from: devicesStart))
        let serial = try #require(decoded.first { $0.section.name == "serial" })
        #expect(serial.contents.value(at: "state.lcr") == DecodedValue(offset: UInt64(serialBody + 5), byteCount: 1, content: .unsigned(UInt64(bytes[serialBody + 5]))))
        #expect(serial.contents.value(at: "state.divider")?.content == .unsigned(UInt64(bytes[serialBody]) << 8 | UInt64(bytes[serialBody + 1])))

        // globalstate (migration/global_state.c): be32 size, then the run state's name in a 32-byte buffer.
        let globalBody = try #require(Self.bodyOffset(of: "globalstate", in: bytes, from: devicesStart))
        let size = Int(Self.be32(bytes, at: globalBody))
        let runState = String(decoding: bytes[globalBody + 4..<globalBody + 4 + size].prefix { $0 != 0 }, as: UTF8.self)
        #expect(runState == "running")
        let global = try #require(decoded.first { $0.section.name == "globalstate" })
        #expect(global.contents.value(at: "size")?.content == .unsigned(UInt64(size)))
        let buffer = try #require(global.contents.value(at: "runstate")?.bytes)
        #expect(String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self) == runState)

        // vhost-user-fs: its virtio field holds the two 1024-entry queues' sizes at these offsets.
        let fs = try #require(decoded.first { $0.section.name == "0000:00:01.0/vhost-user-fs" })
        let virtio = try #require(fs.contents.value(at: "virtio"))
        #expect(virtio.byteCount == 45619)
        for offset in [63_851_662, 63_851_678] {
            #expect(Self.be32(bytes, at: offset) == 1024)
            let inField = offset - Int(virtio.offset)
            #expect(try #require(virtio.bytes)[inField..<inField + 4].elementsEqual(MigrationFileBuilder.be32(1024)))
        }
        #expect(fs.contents.value(at: "/vhost-user-fs-backend.back-end")?.content == .elided)

        // The CPU: 16 general registers, each 8 bytes, the first at the body's start.
        let cpu = try #require(decoded.first { $0.section.name == "cpu" })
        let cpuBody = Int(cpu.bodyOffset)
        let registers = try #require(cpu.contents.value(at: "env.regs")?.elements)
        #expect(registers.count == 16)
        for (index, register) in registers.enumerated() {
            let offset = cpuBody + 8 * index
            let expected = bytes[offset..<offset + 8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            #expect(register == DecodedValue(offset: UInt64(offset), byteCount: 8, content: .unsigned(expected)))
        }
    }
}
