import MigrationFile
import StateStream

/// The field decoder fed arbitrary bytes: the first 8 choose a device's JSON
/// description (field types, array lengths, a struct, a subsection), the rest
/// is the section's body, put in a migration file with the description after
/// its EOF marker. Read whole and a byte at a time:
/// - both walks keep the same body and decode it the same;
/// - every decoded value and every problem lies within the body;
/// - a section never decodes to more than ``FieldDecoder/maximumValueCount`` values;
/// - the virtio decoder, given the body, reports queues and findings within it.
enum FieldDecoderTarget {
    /// (type, size) the description's fields are drawn from.
    static let types: [(String, Int)] = [
        ("uint8", 1), ("uint16", 2), ("uint32", 4), ("uint64", 8), ("int32 le", 4), ("int64", 8), ("bool", 1),
        ("nullptr", 1), ("buffer", 5), ("uint64", 9), ("capability", 4), ("timer", 8), ("int8", 1), ("uint32 equal", 4),
    ]

    static func run(_ input: [UInt8]) throws {
        let seed = Array(input.prefix(8))
        let body = Array(input.dropFirst(8))
        let json = description(from: seed)
        var file: [UInt8] = [0x51, 0x45, 0x56, 0x4D, 0, 0, 0, 3]
        let name = Array("dev".utf8)
        file += [0x04, 0, 0, 0, 1, UInt8(name.count)] + name + [0, 0, 0, 0, 0, 0, 0, 1]
        let bodyOffset = UInt64(file.count)
        file += body + [0x7e, 0, 0, 0, 1, 0x00]
        let text = Array(json.utf8)
        file += [0x06] + UInt32(text.count).bytes() + text

        let whole = try decode(file, readSizes: { _ in .max })
        let trickled = try decode(file, readSizes: { _ in 1 })
        try check(whole.bodies == trickled.bodies, "a byte at a time keeps other section bodies")
        try check(whole.sections == trickled.sections, "a byte at a time decodes otherwise")
        for (section, kept) in zip(whole.sections, whole.bodies) {
            try check(kept.offset == bodyOffset, "the body starts at \(kept.offset), not \(bodyOffset)")
            let range = kept.offset...kept.endOffset
            var count = 0
            try checkWithin(section.contents, range, &count)
            try check(count <= FieldDecoder.maximumValueCount + 1, "\(count) values in one section")
            for problem in section.problems {
                try check(problem.offset >= kept.sectionOffset && problem.offset <= kept.endOffset, "\(problem) lies outside the section")
            }
            if let state = try? VirtioDeviceState.decode(kept.bytes[...], at: kept.offset) {
                for queue in state.queues {
                    try check(range.contains(queue.sizeOffset) && range.contains(queue.lastAvailableIndexOffset), "virtqueue \(queue.index) lies outside the body")
                }
                for finding in state.findings(queueSize: 1) {
                    try check(range.contains(finding.offset), "\(finding) lies outside the body")
                }
            }
        }
    }

    /// A description of device `dev` drawn from `seed`.
    static func description(from seed: [UInt8]) -> String {
        var fields: [String] = []
        for (index, byte) in seed.enumerated() {
            let (type, size) = types[Int(byte) % types.count]
            let length = Int(byte >> 5)
            let array = length > 1 ? ", \"array_len\": \(length * (byte & 0x10 != 0 ? 1000 : 1))" : ""
            if byte & 0x0f == 0x0f {
                fields.append("""
                    {"name": "s\(index)"\(array), "type": "struct", "size": 3, "struct": {"vmsd_name": "s", "version": 1,
                     "fields": [{"name": "a", "type": "uint8", "size": 1}, {"name": "b", "type": "uint16", "size": 2}],
                     "subsections": [{"vmsd_name": "s/x", "version": 1, "fields": [{"name": "c", "type": "bool", "size": 1}]}]}}
                    """)
            } else {
                fields.append("{\"name\": \"f\(index % 3)\"\(array), \"type\": \"\(type)\", \"size\": \(size)}")
            }
        }
        let subsection = seed.first.map { $0 & 0x80 != 0 } == true
            ? ", \"subsections\": [{\"vmsd_name\": \"dev/more\", \"version\": 2, \"fields\": [{\"name\": \"m\", \"type\": \"uint32\", \"size\": 4}]}]" : ""
        return """
            {"page_size": 4096, "devices": [{"name": "dev", "instance_id": 0, "vmsd_name": "dev", "version": 1,
             "fields": [\(fields.joined(separator: ", "))]\(subsection)}]}
            """
    }

    struct Decoded {
        var bodies: [SectionBody] = []
        var sections: [DecodedSection] = []
    }

    static func decode(_ file: [UInt8], readSizes: @escaping (Int) -> Int) throws -> Decoded {
        let reader = MigrationFileReader(input: try StateStreamInput(source: ByteArraySource(file, readSizes: readSizes)), keepsSectionBodies: true)
        let states = try DeviceStates.read(reader)
        return Decoded(bodies: states.bodies, sections: states.sections)
    }

    static func checkWithin(_ structure: DecodedStructure, _ range: ClosedRange<UInt64>, _ count: inout Int) throws {
        for field in structure.fields { try checkWithin(field.value, range, &count) }
        for subsection in structure.subsections {
            try check(range.contains(subsection.offset) && subsection.offset + subsection.byteCount <= range.upperBound, "subsection \(subsection.name) lies outside the body")
            try checkWithin(subsection.contents, range, &count)
        }
    }

    static func checkWithin(_ value: DecodedValue, _ range: ClosedRange<UInt64>, _ count: inout Int) throws {
        count += 1
        try check(range.contains(value.offset) && value.offset + value.byteCount <= range.upperBound, "a value at \(value.offset)+\(value.byteCount) lies outside the body")
        switch value.content {
        case .elements(let elements): for element in elements { try checkWithin(element, range, &count) }
        case .structure(let structure): try checkWithin(structure, range, &count)
        default: break
        }
    }
}
