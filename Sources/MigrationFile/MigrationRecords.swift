import StateStream

/// Who a section belongs to: its id and what its START or FULL header said.
public struct SectionIdentity: Hashable, Sendable, Codable {
    /// The be32 section id; PART and END records name only this.
    public let id: UInt32
    /// The `idstr`, e.g. `ram` or `0000:00:01.0/vhost-user-fs`.
    public let name: String
    /// The instance id.
    public let instanceID: UInt32
    /// The vmsd version.
    public let version: UInt32

    /// An identity from its header's fields.
    public init(id: UInt32, name: String, instanceID: UInt32, version: UInt32) {
        self.id = id
        self.name = name
        self.instanceID = instanceID
        self.version = version
    }

    /// Whether `device`, as a user names a device (`--device`), is this section:
    /// its idstr or its section id.
    public func matches(device: String) -> Bool {
        device == name || device == String(id)
    }

    /// The vmsd name: the last `/`-separated component of the idstr.
    public var vmsdName: String { Self.vmsdName(ofIdstr: name) }

    /// The last `/`-separated component of `idstr`.
    static func vmsdName(ofIdstr idstr: String) -> String {
        String(idstr.split(separator: "/", omittingEmptySubsequences: false).last ?? "")
    }
}

/// One section record in the file: START, PART, END or FULL, from its type byte
/// through its footer.
public struct SectionRecord: Hashable, Sendable {
    /// START, PART, END or FULL.
    public let type: MigrationFormat.RecordType
    /// The section it belongs to.
    public let section: SectionIdentity
    /// The offset of its type byte.
    public let offset: UInt64
    /// Its bytes, header and footer included.
    public let byteCount: UInt64
    /// Its header's bytes, as read (the idstr's own length, whatever its text decodes to).
    public let headerByteCount: UInt64
    /// Whether it ends with a footer (machine types since 2.4).
    public let hasFooter: Bool

    /// Its bytes between header and footer.
    public var bodyByteCount: UInt64 {
        byteCount - headerByteCount - (hasFooter ? UInt64(MigrationFormat.footerSize) : 0)
    }
}

/// The configuration section: the machine type and the settings that change
/// how the rest of the file reads.
public struct MigrationConfiguration: Hashable, Sendable, Codable {
    /// The machine type, e.g. `pc-q35-10.0`.
    public let machineType: String
    /// Bits of the target page size: RAM page records are `1 << targetPageBits` bytes.
    public let targetPageBits: UInt32
    /// The migration capabilities the source declared must match (e.g. `x-ignore-shared`).
    public let capabilities: [String]
    /// The offset of the configuration record.
    public let offset: UInt64

    /// A configuration from its fields and its record's offset.
    public init(machineType: String, targetPageBits: UInt32, capabilities: [String], offset: UInt64) {
        self.machineType = machineType
        self.targetPageBits = targetPageBits
        self.capabilities = capabilities
        self.offset = offset
    }
}

/// A COMMAND record.
public struct MigrationCommand: Hashable, Sendable, Codable {
    /// The command number (e.g. 11 = SWITCHOVER_START).
    public let command: UInt16
    /// The offset of the record.
    public let offset: UInt64
    /// The bytes of data it carries.
    public let dataLength: UInt16

    /// A command record from its number, offset and data length.
    public init(command: UInt16, offset: UInt64, dataLength: UInt16) {
        self.command = command
        self.offset = offset
        self.dataLength = dataLength
    }
}

/// Where a vhost-user back-end's state sits in the file.
public struct BackEndStateLocation: Hashable, Sendable {
    /// The device section holding it.
    public let section: SectionIdentity
    /// The offset of the device section's FULL header.
    public let sectionOffset: UInt64
    /// Which subsection carries it.
    public let subsection: BackEndStateSubsection
    /// The offset of the subsection header (`0x05`, name, version).
    public let headerOffset: UInt64
    /// The offset of the chunk-framed stream: right after the subsection header.
    public let streamOffset: UInt64
}

/// One block of guest RAM, as the RAM section's block list gives it.
public struct RAMBlock: Hashable, Sendable, Codable {
    /// Where a `mapped-ram` file keeps a block's pages.
    public struct MappedRegion: Hashable, Sendable, Codable {
        /// The file offset of its bitmap: one bit per page, set for a page the file holds.
        public let bitmapOffset: UInt64
        /// The file offset of its first page; page `i` is at `pagesOffset + i * pageSize`.
        public let pagesOffset: UInt64

        /// A region from its offsets.
        public init(bitmapOffset: UInt64, pagesOffset: UInt64) {
            self.bitmapOffset = bitmapOffset
            self.pagesOffset = pagesOffset
        }
    }

    /// Its name (`pc.ram`, `/rom@etc/acpi/tables`): the RAMBlock's idstr.
    public let name: String
    /// Its size (`used_length`).
    public let byteCount: UInt64
    /// The size of the pages its records carry: the target page size.
    public let pageSize: UInt64
    /// The file offset of its entry in the block list.
    public let offset: UInt64
    /// With `mapped-ram`, where its pages are; `nil` otherwise.
    public let mappedRegion: MappedRegion?

    /// A block from its parts.
    public init(name: String, byteCount: UInt64, pageSize: UInt64, offset: UInt64, mappedRegion: MappedRegion?) {
        self.name = name
        self.byteCount = byteCount
        self.pageSize = pageSize
        self.offset = offset
        self.mappedRegion = mappedRegion
    }
}

/// What the walk finds, in file order.
public enum MigrationEvent {
    /// The configuration section.
    case configuration(MigrationConfiguration)
    /// A vhost-user back-end's state begins; its stream's events follow as
    /// ``backEndState(_:)``, with offsets counting from the stream's start.
    case backEndStateStart(BackEndStateLocation)
    /// An event of the embedded stream that began last.
    case backEndState(StreamEvent)
    /// The embedded stream ended with its terminator; it is `length` framed bytes long.
    case backEndStateEnd(BackEndStateLocation, length: UInt64)
    /// A section record is complete (footer included).
    case section(SectionRecord)
    /// A COMMAND record.
    case command(MigrationCommand)
    /// The EOF marker, at this offset.
    case endOfFile(offset: UInt64)
    /// The JSON description after the EOF marker: its record's offset and size.
    case description(VMDescription, offset: UInt64, byteCount: UInt64)
    /// A RAM block of the block list at the RAM section's start.
    case ramBlock(RAMBlock)
    /// A device (FULL) section's body, before its ``section(_:)`` event;
    /// only from a reader that keeps them. Also sent, incomplete, for a
    /// section the walk stops inside.
    case sectionBody(SectionBody)
    /// The JSON description's text as the file holds it, before its
    /// ``description(_:offset:byteCount:)`` event; only from a reader that
    /// keeps section bodies. `offset` is the text's first byte.
    case descriptionText([UInt8], offset: UInt64)
    /// A problem. After an error the walk ends.
    case problem(MigrationProblem)
    /// The walk has read this many bytes of the (decompressed) file; sent every
    /// few MiB, for progress displays.
    case progress(bytesRead: UInt64)
}
