import StateStream
import FoundationEssentials
import SystemPackage

/// The JSON description QEMU appends after the EOF marker (`vmdesc`): every
/// device section with the size each field took in the file.
///
/// Only what statetool checks is decoded; other keys are ignored.
public struct VMDescription: Hashable, Sendable, Decodable {
    /// The target page size.
    public let pageSize: UInt64?
    /// How the configuration record reads (QEMU 9.1 and later describe it):
    /// its fields and its `configuration/…` subsections.
    public let configuration: Subsection?
    /// The device (FULL) sections, in file order.
    public let devices: [Device]

    /// One field of a section or subsection.
    public struct Field: Hashable, Sendable, Decodable {
        /// The field's name in its VMStateDescription.
        public let name: String
        /// The VMStateInfo name, or `struct`.
        public let type: String
        /// The bytes one element of the field took in the file.
        public let size: UInt64
        /// The number of elements, for an array QEMU compressed to one entry.
        public let arrayLength: UInt64?
        /// The element's index, for an array QEMU lists entry by entry
        /// (elements that cannot be compressed: a struct with subsections,
        /// a field that exists only sometimes).
        public let index: UInt64?
        /// What one element holds, for a `struct` field: its vmsd name,
        /// version, fields and subsections.
        public let structure: Subsection?
        /// The fields a `tmp` field (`VMSTATE_WITH_TMP`) writes in its place, in file order.
        public let temporaryFields: [Field]

        enum CodingKeys: String, CodingKey {
            case name, type, size, arrayLength = "array_len", index, structure = "struct", temporaryFields = "fields"
        }

        /// A field from its parts, as QEMU's JSON gives them.
        public init(
            name: String, type: String, size: UInt64, arrayLength: UInt64? = nil, index: UInt64? = nil,
            structure: Subsection? = nil, temporaryFields: [Field] = []
        ) {
            self.name = name
            self.type = type
            self.size = size
            self.arrayLength = arrayLength
            self.index = index
            self.structure = structure
            self.temporaryFields = temporaryFields
        }

        /// Decodes `name`, `type` and `size`, and `array_len`, `index`,
        /// `struct` and a `tmp` field's `fields` where present.
        ///
        /// - Throws: `DecodingError` when `name`, `type` or `size` is missing
        ///   or of another type.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            name = try container.decode(String.self, forKey: .name)
            type = try container.decode(String.self, forKey: .type)
            size = try container.decode(UInt64.self, forKey: .size)
            arrayLength = try container.decodeIfPresent(UInt64.self, forKey: .arrayLength)
            index = try container.decodeIfPresent(UInt64.self, forKey: .index)
            structure = try container.decodeIfPresent(Subsection.self, forKey: .structure)
            temporaryFields = try container.decodeIfPresent([Field].self, forKey: .temporaryFields) ?? []
        }

        /// The bytes the whole field took: QEMU describes an array by its
        /// first element's size and its length.
        public var byteCount: UInt64 { size * (arrayLength ?? 1) }
    }

    /// A subsection: its name, version, fields and own subsections.
    public struct Subsection: Hashable, Sendable, Decodable {
        /// The subsection's VMStateDescription name (`vmsd_name`).
        public let vmsdName: String
        /// Its version.
        public let version: UInt32
        /// Its fields, in file order; empty when the JSON lists none.
        public let fields: [Field]
        /// Its own subsections, in file order; empty when the JSON lists none.
        public let subsections: [Subsection]

        enum CodingKeys: String, CodingKey {
            case vmsdName = "vmsd_name", version, fields, subsections
        }

        /// Decodes `vmsd_name`, `version`, and `fields` and `subsections` where
        /// present.
        ///
        /// - Throws: `DecodingError` when `vmsd_name` or `version` is missing or of
        ///   another type.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            vmsdName = try container.decode(String.self, forKey: .vmsdName)
            version = try container.decode(UInt32.self, forKey: .version)
            fields = try container.decodeIfPresent([Field].self, forKey: .fields) ?? []
            subsections = try container.decodeIfPresent([Subsection].self, forKey: .subsections) ?? []
        }

        /// Bytes of the subsection in the file: its header (`0x05`, name
        /// length, name, be32 version), fields and subsections.
        var byteCount: UInt64 {
            UInt64(1 + 1 + vmsdName.utf8.count + 4) + VMDescription.byteCount(fields, subsections)
        }
    }

    /// A device section.
    public struct Device: Hashable, Sendable, Decodable {
        /// The section's idstr.
        public let name: String
        /// The section's instance id (`instance_id`).
        public let instanceID: UInt32
        /// The VMStateDescription name (`vmsd_name`).
        public let vmsdName: String
        /// The vmsd version.
        public let version: UInt32
        /// Its fields, in file order; empty when the JSON lists none.
        public let fields: [Field]
        /// Its subsections, in file order; empty when the JSON lists none.
        public let subsections: [Subsection]

        enum CodingKeys: String, CodingKey {
            case name, instanceID = "instance_id", vmsdName = "vmsd_name", version, fields, subsections
        }

        /// Decodes `name`, `instance_id`, `vmsd_name`, `version`, and `fields` and
        /// `subsections` where present.
        ///
        /// - Throws: `DecodingError` when a required key is missing or of another
        ///   type.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            name = try container.decode(String.self, forKey: .name)
            instanceID = try container.decode(UInt32.self, forKey: .instanceID)
            vmsdName = try container.decode(String.self, forKey: .vmsdName)
            version = try container.decode(UInt32.self, forKey: .version)
            fields = try container.decodeIfPresent([Field].self, forKey: .fields) ?? []
            subsections = try container.decodeIfPresent([Subsection].self, forKey: .subsections) ?? []
        }

        /// Bytes between the section's header and its footer, as described.
        public var bodyByteCount: UInt64 { VMDescription.byteCount(fields, subsections) }

        /// The described size of the vhost-user-fs back-end state (the
        /// `back-end` field of `vhost-user-fs-backend`), if the device has one.
        public var backEndStateByteCount: UInt64? {
            subsections.first { $0.vmsdName == BackEndStateSubsection.vhostUserFS.name }?
                .fields.first { $0.name == "back-end" }?.byteCount
        }
    }

    enum CodingKeys: String, CodingKey {
        case pageSize = "page_size", configuration, devices
    }

    /// The device described for `section`, matched by idstr and instance.
    public func device(for section: SectionIdentity) -> Device? {
        deviceIndex(for: section).map { devices[$0] }
    }

    /// Where ``devices`` holds the device described for `section`.
    public func deviceIndex(for section: SectionIdentity) -> Int? {
        devices.firstIndex { $0.name == section.name && $0.instanceID == section.instanceID }
    }

    static func byteCount(_ fields: [Field], _ subsections: [Subsection]) -> UInt64 {
        fields.reduce(0) { $0 + $1.byteCount } + subsections.reduce(0) { $0 + $1.byteCount }
    }

    /// The description record that ends a regular, uncompressed file, as
    /// ``readTrailer(of:size:bytesRead:)`` finds it.
    public struct Trailer: Hashable, Sendable {
        /// The description.
        public let description: VMDescription
        /// The offset of the EOF marker (`0x00`) right before the description's record.
        public let endOfFileOffset: UInt64
    }

    /// The description at the end of the regular file `file` of `size` bytes,
    /// or `nil` if its last 16 MiB hold none: `0x00` (EOF), `0x06`, a be32
    /// length, and that many bytes of JSON running exactly to the end of the
    /// file. Read with `pread` (the file's read position does not move); QEMU's
    /// descriptions take tens of KiB, so the tail is read in growing steps, and
    /// `bytesRead` grows by what they took.
    ///
    /// - Throws: `InputError.readFailed` when reading the file fails
    ///   (`EIO`): an unreadable tail is not a file without a description.
    public static func readTrailer(of file: FileDescriptor, size: UInt64, bytesRead: inout UInt64) throws(InputError) -> Trailer? {
        for step in [64 << 10, 1 << 20, 16 << 20] {
            let tailLength = Int(min(size, UInt64(step)))
            var tail = [UInt8](repeating: 0, count: tailLength)
            let tailStart = size - UInt64(tailLength)
            let read: Int
            do {
                read = try tail.withUnsafeMutableBytes { try file.read(fromAbsoluteOffset: Int64(tailStart), into: $0) }
            } catch {
                throw .readFailed((error as? Errno) ?? .ioError)
            }
            bytesRead += UInt64(read)
            guard read == tailLength else { return nil }
            if let (description, position) = findTrailer(in: tail) {
                return Trailer(description: description, endOfFileOffset: tailStart + UInt64(position) - 1)
            }
            if UInt64(tailLength) == size { return nil }
        }
        return nil
    }

    /// The description at the end of the regular file `file` of `size` bytes
    /// (see ``readTrailer(of:size:bytesRead:)``), or `nil`.
    ///
    /// - Throws: `InputError.readFailed` when reading the file fails.
    public static func readTrailer(of file: FileDescriptor, size: UInt64) throws(InputError) -> VMDescription? {
        var bytesRead: UInt64 = 0
        return try readTrailer(of: file, size: size, bytesRead: &bytesRead)?.description
    }

    /// The description that runs exactly to the end of `tail`, and the index of its record's `0x06`, if any.
    private static func findTrailer(in tail: [UInt8]) -> (VMDescription, Int)? {
        var position = tail.count - 6
        while position >= 1 {
            if tail[position] == MigrationFormat.RecordType.description.rawValue,
                tail[position - 1] == MigrationFormat.RecordType.endOfFile.rawValue,
                tail[position + 5] == UInt8(ascii: "{"),
                tail[position + 1..<position + 5].readInteger(as: UInt32.self).map(Int.init) == tail.count - position - 5
            {
                return (try? decode(Array(tail[(position + 5)...]))).map { ($0, position) }
            }
            position -= 1
        }
        return nil
    }

    /// Decodes the JSON text of a description.
    public static func decode(_ json: [UInt8]) throws -> VMDescription {
        try JSONDecoder().decode(VMDescription.self, from: Data(json))
    }
}
