import StateStream

/// Decodes a device section's body through its entry in the JSON description,
/// as QEMU's `scripts/analyze-migration.py` does: fields by name in file
/// order, arrays from `array_len` and from repeated entries, `struct` fields
/// by their own description, subsections under their names, big-endian
/// integers of every width, `bool`, `nullptr`, `capability`, and any other
/// type as its bytes.
///
/// Every value carries its file offset. Nothing is allocated by a length read
/// from the file: values are slices of the kept body, whose size is capped
/// (``SectionBody/maximumKeptByteCount``), and a section holds at most
/// ``maximumValueCount`` values. Where the bytes do not fit the description,
/// decoding stops with a ``FieldProblem`` and what was decoded before it is kept.
///
/// ```swift
/// let decoded = FieldDecoder.decode(body, as: description.device(for: body.section)!)
/// print(decoded.contents.value(at: "state.lcr")?.unsignedValue ?? 0)
/// ```
public struct FieldDecoder {
    /// The most values one section decodes to (elements of arrays counted one by one).
    public static let maximumValueCount = 1 << 18

    private var reader: BodyReader
    /// The problem decoding stopped at, if any.
    private var problem: FieldProblem?
    private var valueCount = 0

    private init(body: SectionBody) {
        reader = BodyReader(body: body)
    }

    /// Decodes `body` as `device` describes it.
    public static func decode(_ body: SectionBody, as device: VMDescription.Device) -> DecodedSection {
        var decoder = FieldDecoder(body: body)
        let contents = decoder.structure(fields: device.fields, subsections: device.subsections, path: "")
        var problems = decoder.problem.map { [$0] } ?? []
        if problems.isEmpty, decoder.reader.remaining > 0 {
            problems.append(.unreadBytes(count: decoder.reader.remaining, at: decoder.reader.offset))
        }
        return DecodedSection(
            section: body.section, sectionOffset: body.sectionOffset, bodyOffset: body.offset, contents: contents, problems: problems)
    }

    private var stopped: Bool { problem != nil }

    private mutating func fail(_ problem: FieldProblem) {
        self.problem = problem
    }

    // MARK: - Structures

    /// Fields, then subsections, as far as they decode.
    private mutating func structure(fields: [VMDescription.Field], subsections: [VMDescription.Subsection], path: String) -> DecodedStructure {
        var result = DecodedStructure()
        for field in fields {
            decode(field, into: &result.fields, path: path)
            if stopped { return result }
        }
        for subsection in subsections {
            if let decoded = decode(subsection, path: path) { result.subsections.append(decoded) }
            if stopped { return result }
        }
        return result
    }

    /// A subsection: `0x05`, u8 name length, name, be32 version, contents.
    private mutating func decode(_ subsection: VMDescription.Subsection, path: String) -> DecodedSubsection? {
        let offset = reader.offset
        let name = path + "/" + subsection.vmsdName
        guard let marker = reader.peekByte(), marker == MigrationFormat.RecordType.subsection.rawValue else {
            fail(.missingSubsection(subsection.vmsdName, found: reader.peekByte(), at: offset))
            return nil
        }
        let nameLength = Int(reader.byte(at: 1) ?? 0)
        guard let header = reader.peek(2 + nameLength + 4) else {
            fail(.truncated(field: name, needed: UInt64(2 + nameLength + 4), left: reader.remaining, at: offset))
            return nil
        }
        let nameBytes = header.dropFirst(2).prefix(nameLength)
        let found = String(decoding: nameBytes, as: UTF8.self)
        guard found == subsection.vmsdName else {
            fail(.subsectionMismatch(expected: subsection.vmsdName, found: found, at: offset))
            return nil
        }
        let version = header.suffix(4).readInteger(as: UInt32.self) ?? 0
        _ = reader.read(UInt64(header.count))
        let contents = structure(fields: subsection.fields, subsections: subsection.subsections, path: name)
        return DecodedSubsection(name: found, version: version, offset: offset, byteCount: reader.offset - offset, contents: contents)
    }

    // MARK: - Fields

    /// Decodes one description entry and adds it to `fields`, merging it
    /// into an array when its name is already there (QEMU lists arrays it
    /// cannot compress entry by entry, and splits arrays at null pointers).
    private mutating func decode(_ field: VMDescription.Field, into fields: inout [DecodedField], path: String) {
        let fieldPath = path.isEmpty ? field.name : path + "." + field.name
        let start = reader.offset
        var values: [DecodedValue] = []
        let isArray = field.arrayLength != nil || field.index != nil
        let count = field.arrayLength ?? 1
        let earlier = fields.first { $0.name == field.name }?.value.elements.count ?? 0
        let type = FieldType(field.type)
        if let scalars = scalarArray(field, type: type, count: count) {
            add(field, values: scalars, isArray: isArray, start: start, into: &fields)
            return
        }
        var index: UInt64 = 0
        while index < count {
            let elementPath = ElementPath(field: fieldPath, index: isArray || earlier > 0 ? UInt64(earlier) + index : nil)
            if let value = element(field, type: type, path: elementPath) { values.append(value) }
            if stopped { break }
            index += 1
        }
        add(field, values: values, isArray: isArray, start: start, into: &fields)
    }

    /// The elements of an array of integers or bools whose bytes are all kept,
    /// decoded in one pass (the ICH9 LPC's `chip_config` holds 16,384 `uint8`);
    /// `nil` for any other field, or one that does not fit the body (decoded
    /// element by element, to name the element at a problem).
    private mutating func scalarArray(_ field: VMDescription.Field, type: FieldType, count: UInt64) -> [DecodedValue]? {
        guard count > 1, field.structure == nil, field.temporaryFields.isEmpty, (1...8).contains(field.size),
            type == .unsigned || type == .signed || (type == .bool && field.size == 1),
            count <= UInt64(Self.maximumValueCount - valueCount)
        else { return nil }
        let total = field.size * count
        // Only bytes that are there: the capacity below is bounded by the kept body.
        guard reader.peek(Int(total)) != nil, case .bytes(let bytes) = reader.take(total) else { return nil }
        valueCount += Int(count)
        var values: [DecodedValue] = []
        values.reserveCapacity(Int(count))
        var offset = reader.offset - total
        var index = bytes.startIndex
        let size = Int(field.size)
        while index < bytes.endIndex {
            // Every type and width the guard lets in is a scalar: this never fails.
            let content = Self.scalar(type, bytes[index..<index + size]) ?? .bytes(Array(bytes[index..<index + size]))
            values.append(DecodedValue(offset: offset, byteCount: field.size, content: content))
            index += size
            offset += field.size
        }
        return values
    }

    /// An integer or bool of `type` from its big-endian `bytes` (1 to 8 of
    /// them; a bool's one); `nil` for another type or width.
    private static func scalar(_ type: FieldType, _ bytes: ArraySlice<UInt8>) -> DecodedValue.Content? {
        switch type {
        case .unsigned where (1...8).contains(bytes.count):
            return .unsigned(bytes.reduce(0) { $0 << 8 | UInt64($1) })
        case .signed where (1...8).contains(bytes.count):
            let raw = bytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let shift = UInt64(64 - 8 * bytes.count)
            return .signed(Int64(bitPattern: raw << shift) >> shift)
        case .bool where bytes.count == 1:
            return .bool(bytes.first! != 0)
        default:
            return nil
        }
    }

    private func add(_ field: VMDescription.Field, values: [DecodedValue], isArray: Bool, start: UInt64, into fields: inout [DecodedField]) {
        guard !values.isEmpty else { return }
        let end = values.last.map { $0.offset + $0.byteCount } ?? start
        if let index = fields.firstIndex(where: { $0.name == field.name }) {
            let existing = fields[index].value
            let merged = existing.elements + values
            fields[index].value = DecodedValue(offset: existing.offset, byteCount: end - existing.offset, content: .elements(merged))
            return
        }
        let value = isArray ? DecodedValue(offset: start, byteCount: end - start, content: .elements(values)) : values[0]
        fields.append(DecodedField(name: field.name, type: field.type, value: value))
    }

    /// One element of `field`, or `nil` at a problem (a structure decoded
    /// up to a problem is returned, as far as it goes).
    private mutating func element(_ field: VMDescription.Field, type: FieldType, path elementPath: ElementPath) -> DecodedValue? {
        valueCount += 1
        let offset = reader.offset
        guard valueCount <= Self.maximumValueCount else {
            fail(.tooManyValues(field: elementPath.text, at: offset))
            return nil
        }
        if let structure = field.structure {
            let contents = self.structure(fields: structure.fields, subsections: structure.subsections, path: elementPath.text)
            return DecodedValue(offset: offset, byteCount: reader.offset - offset, content: .structure(contents))
        }
        if !field.temporaryFields.isEmpty {
            let contents = self.structure(fields: field.temporaryFields, subsections: [], path: elementPath.text)
            return DecodedValue(offset: offset, byteCount: reader.offset - offset, content: .structure(contents))
        }
        if type == .capability {
            guard let length = reader.peekByte() else {
                fail(.truncated(field: elementPath.text, needed: 1, left: 0, at: offset))
                return nil
            }
            guard let bytes = reader.read(1 + UInt64(length)) else {
                fail(.truncated(field: elementPath.text, needed: 1 + UInt64(length), left: reader.remaining, at: offset))
                return nil
            }
            return DecodedValue(offset: offset, byteCount: 1 + UInt64(length), content: .capability(String(decoding: bytes.dropFirst(), as: UTF8.self)))
        }
        switch reader.take(field.size) {
        case .elided:
            return DecodedValue(offset: offset, byteCount: field.size, content: .elided)
        case .crossesElided:
            fail(.badValue(field: elementPath.text, what: "its \(field.size) bytes run into a back-end state stream", at: offset))
            return nil
        case .short:
            fail(.truncated(field: elementPath.text, needed: field.size, left: reader.remaining, at: offset))
            return nil
        case .bytes(let bytes):
            guard let content = content(of: type, bytes, path: elementPath, at: offset) else { return nil }
            return DecodedValue(offset: offset, byteCount: field.size, content: content)
        }
    }

    /// What `bytes` hold as a field of `type`, or `nil` at a problem.
    private mutating func content(of type: FieldType, _ bytes: ArraySlice<UInt8>, path elementPath: ElementPath, at offset: UInt64) -> DecodedValue.Content? {
        if let scalar = Self.scalar(type, bytes) { return scalar }
        switch type {
        case .nullPointer:
            guard bytes.elementsEqual([FieldType.nullPointerMarker]) else {
                fail(.badValue(field: elementPath.text, what: "a null pointer is the byte 0x30, the file holds \(bytes.hexString)", at: offset))
                return nil
            }
            return .nullPointer
        default:
            return .bytes(Array(bytes))
        }
    }
}

/// How the decoder reads a field's type name (once per field, not per element).
enum FieldType {
    case unsigned, signed, bool, nullPointer, capability, other

    /// The byte QEMU writes for a null pointer in an array of pointers (`'0'`).
    static let nullPointerMarker: UInt8 = 0x30

    init(_ name: String) {
        switch name {
        case "uint8", "uint16", "uint32", "uint64", "uint8 equal", "uint16 equal", "uint32 equal", "uint64 equal":
            self = .unsigned
        case "int8", "int16", "int32", "int64", "int32 equal", "int64 equal", "int32 le":
            self = .signed
        case "bool": self = .bool
        case "nullptr": self = .nullPointer
        case "capability": self = .capability
        default: self = .other
        }
    }
}

/// Reads a kept section body in file order, by file offset.
struct BodyReader {
    let body: SectionBody
    /// The file offset of the next byte.
    private(set) var offset: UInt64
    /// The index in `body.bytes` of the next byte.
    private var index: Int
    /// The next elided range not yet passed.
    private var nextElided = 0

    init(body: SectionBody) {
        self.body = body
        offset = body.offset
        index = 0
    }

    /// Kept bytes not yet read, up to the next elided range, plus the rest after it.
    var remaining: UInt64 {
        UInt64(body.bytes.count - index) + body.elided[nextElided...].reduce(0) { $0 + UInt64($1.count) }
    }

    enum Taken {
        case bytes(ArraySlice<UInt8>)
        /// Exactly an elided range.
        case elided
        /// Part of an elided range, or more.
        case crossesElided
        /// Fewer bytes are left.
        case short
    }

    /// Takes `count` bytes.
    mutating func take(_ count: UInt64) -> Taken {
        if nextElided < body.elided.count {
            let elided = body.elided[nextElided]
            if offset == elided.lowerBound && count == UInt64(elided.count) {
                offset += count
                nextElided += 1
                return .elided
            }
            if count > 0 && elided.lowerBound < offset + count && offset < elided.upperBound { return .crossesElided }
        }
        guard count <= UInt64(body.bytes.count - index) else { return .short }
        let bytes = body.bytes[index..<index + Int(count)]
        index += Int(count)
        offset += count
        return .bytes(bytes)
    }

    /// Reads `count` kept bytes, or `nil` without moving when they are not all there.
    mutating func read(_ count: UInt64) -> ArraySlice<UInt8>? {
        if case .bytes(let bytes) = take(count) { return bytes }
        return nil
    }

    /// The next `count` kept bytes without reading them.
    func peek(_ count: Int) -> ArraySlice<UInt8>? {
        var copy = self
        return copy.read(UInt64(count))
    }

    func peekByte() -> UInt8? { byte(at: 0) }

    /// The kept byte `ahead` bytes on, if it is there.
    func byte(at ahead: Int) -> UInt8? {
        index + ahead < body.bytes.count ? body.bytes[index + ahead] : nil
    }
}

extension FieldDecoder {
    /// An element's path in problems (`env.regs[3]`), put together only when
    /// a problem names it: a section may hold a quarter million elements.
    struct ElementPath {
        /// The field's path.
        let field: String
        /// The element's index in an array; `nil` for a field that is none.
        let index: UInt64?

        /// `field`, or `field[index]`.
        var text: String { index.map { field + "[" + String($0) + "]" } ?? field }
    }
}
