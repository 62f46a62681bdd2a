import StateStream

/// One value decoded from a device section, with where it is in the file.
public struct DecodedValue: Hashable, Sendable {
    /// What a value holds.
    public enum Content: Hashable, Sendable {
        /// An unsigned big-endian integer (`uint8` … `uint64`, their `equal` forms).
        case unsigned(UInt64)
        /// A signed big-endian integer (`int8` … `int64`, `int32 equal`, `int32 le`).
        case signed(Int64)
        /// A `bool`: its byte is not zero.
        case bool(Bool)
        /// Bytes of a type the decoder does not interpret (`buffer`, `timer`,
        /// `pci config`, `virtio`, any unknown type), or an integer wider than 8 bytes.
        case bytes([UInt8])
        /// A `nullptr` field: QEMU's marker byte `0x30` for a null pointer in an array.
        case nullPointer
        /// A `capability` of the configuration section: its name.
        case capability(String)
        /// A `struct` (or `tmp`) field's element: its own fields and subsections.
        case structure(DecodedStructure)
        /// An array's elements, in file order: from `array_len`, from entries
        /// with an `index`, or from entries that share a name.
        case elements([DecodedValue])
        /// Bytes the walk did not keep: a vhost-user back-end's state stream,
        /// which `extract` and `inspect` read.
        case elided
    }

    /// The file offset of the value's first byte.
    public let offset: UInt64
    /// The bytes it takes in the file.
    public let byteCount: UInt64
    /// What it holds.
    public let content: Content

    /// A value from its parts.
    public init(offset: UInt64, byteCount: UInt64, content: Content) {
        self.offset = offset
        self.byteCount = byteCount
        self.content = content
    }

    /// The integer, for ``Content/unsigned(_:)`` and non-negative ``Content/signed(_:)``.
    public var unsignedValue: UInt64? {
        switch content {
        case .unsigned(let value): return value
        case .signed(let value) where value >= 0: return UInt64(value)
        default: return nil
        }
    }

    /// The elements of an array; a value that is no array is its own one element.
    public var elements: [DecodedValue] {
        if case .elements(let elements) = content { return elements }
        return [self]
    }

    /// The fields and subsections of a structure, if it is one.
    public var structure: DecodedStructure? {
        if case .structure(let structure) = content { return structure }
        return nil
    }

    /// The bytes, for ``Content/bytes(_:)``.
    public var bytes: [UInt8]? {
        if case .bytes(let bytes) = content { return bytes }
        return nil
    }
}

/// One named field of a section, structure or subsection.
public struct DecodedField: Hashable, Sendable {
    /// The field's name as QEMU's JSON description gives it (`env.cr[3]`, `lcr`).
    public let name: String
    /// The type the description gives (`uint8`, `struct`, `virtio`, …).
    public let type: String
    /// Its value; an array's is ``DecodedValue/Content/elements(_:)``.
    public var value: DecodedValue

    /// A field from its parts.
    public init(name: String, type: String, value: DecodedValue) {
        self.name = name
        self.type = type
        self.value = value
    }
}

/// The fields and subsections of a section, a subsection or one element of a `struct` field.
public struct DecodedStructure: Hashable, Sendable {
    /// The fields, in file order, each name once.
    public var fields: [DecodedField]
    /// The subsections, in file order.
    public var subsections: [DecodedSubsection]

    /// A structure from its parts.
    public init(fields: [DecodedField] = [], subsections: [DecodedSubsection] = []) {
        self.fields = fields
        self.subsections = subsections
    }

    /// The field named `name`, if any.
    public subscript(field name: String) -> DecodedField? {
        fields.first { $0.name == name }
    }

    /// The subsection named `name` (its vmsd name), if any.
    public subscript(subsection name: String) -> DecodedSubsection? {
        subsections.first { $0.name == name }
    }

    /// The value at `path`: field names, with `/` before a subsection's
    /// name and `[i]` after an array field (`state.lcr`, `timer[2].config`,
    /// `/hpet/offset.hpet_offset`).
    public func value(at path: String) -> DecodedValue? {
        var structure = self
        var value: DecodedValue?
        var rest = Substring(path)
        while !rest.isEmpty {
            if let current = value {
                guard let inner = current.structure else { return nil }
                structure = inner
            }
            if rest.first == "/" {
                // A subsection: its name runs to the next `.` after the name's own `/`s.
                let name = rest.dropFirst()
                guard let subsection = structure.subsections.first(where: { name.hasPrefix($0.name) }) else { return nil }
                rest = name.dropFirst(subsection.name.count)
                if rest.first == "." { rest = rest.dropFirst() }
                value = DecodedValue(offset: subsection.offset, byteCount: subsection.byteCount, content: .structure(subsection.contents))
                continue
            }
            let name = structure.fields.map(\.name).filter { rest.hasPrefix($0) }.max { $0.count < $1.count }
            guard let name, let field = structure[field: name] else { return nil }
            rest = rest.dropFirst(name.count)
            value = field.value
            while rest.first == "[", let close = rest.firstIndex(of: "]"), let index = Int(rest[rest.index(after: rest.startIndex)..<close]) {
                guard let elements = value?.elements, elements.indices.contains(index) else { return nil }
                value = elements[index]
                rest = rest[rest.index(after: close)...]
            }
            if rest.first == "." { rest = rest.dropFirst() }
        }
        return value
    }
}

/// A subsection as the file holds it: `0x05`, its name, its version, its contents.
public struct DecodedSubsection: Hashable, Sendable {
    /// Its vmsd name, as the file gives it (`hpet/offset`).
    public let name: String
    /// Its version, as the file gives it.
    public let version: UInt32
    /// The file offset of its `0x05` marker.
    public let offset: UInt64
    /// Its bytes, header included.
    public let byteCount: UInt64
    /// Its fields and own subsections.
    public let contents: DecodedStructure

    /// A subsection from its parts.
    public init(name: String, version: UInt32, offset: UInt64, byteCount: UInt64, contents: DecodedStructure) {
        self.name = name
        self.version = version
        self.offset = offset
        self.byteCount = byteCount
        self.contents = contents
    }
}

/// A device section decoded through its entry in the JSON description.
public struct DecodedSection: Hashable, Sendable {
    /// The section's id, idstr, instance and version.
    public let section: SectionIdentity
    /// The file offset of its FULL header.
    public let sectionOffset: UInt64
    /// The file offset of its body.
    public let bodyOffset: UInt64
    /// Its fields and subsections, as far as they decode.
    public let contents: DecodedStructure
    /// Every problem met, with its offset; the fields before the first are whole.
    public let problems: [FieldProblem]

    /// A decoded section from its parts.
    public init(section: SectionIdentity, sectionOffset: UInt64, bodyOffset: UInt64, contents: DecodedStructure, problems: [FieldProblem]) {
        self.section = section
        self.sectionOffset = sectionOffset
        self.bodyOffset = bodyOffset
        self.contents = contents
        self.problems = problems
    }
}
