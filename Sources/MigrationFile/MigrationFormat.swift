/// The byte-level rules of a QEMU migration file (`migration/savevm.c`,
/// `migration/ram.c`, `migration/vmstate.c`), as far as statetool needs them to
/// walk a file and find the back-end state inside it.
///
/// Numbers are big-endian. A file is the `QEVM` header, a configuration
/// section, then sections, commands and the EOF marker, optionally followed by
/// the JSON description of the device sections.
public enum MigrationFormat {
    /// `QEVM`, the first four bytes.
    public static let magic: UInt32 = 0x5145_564D
    /// The only file version QEMU writes and reads (version 2 is rejected as obsolete).
    public static let version: UInt32 = 3
    /// The header: magic and version.
    public static let headerSize = 8

    /// Whether `bytes` start with the `QEVM` magic.
    public static func startsWithMagic(_ bytes: [UInt8]) -> Bool {
        bytes.readInteger(endianness: .big, as: UInt32.self) == magic
    }

    /// The byte that starts each record after the header.
    public enum RecordType: UInt8, Sendable {
        /// `QEMU_VM_EOF`: the end of the device state; the JSON description may
        /// follow.
        case endOfFile = 0x00
        /// `QEMU_VM_SECTION_START`: the first part of an iterative section (RAM),
        /// with the section's id, idstr, instance id and version.
        case sectionStart = 0x01
        /// `QEMU_VM_SECTION_PART`: a further part of an iterative section, naming
        /// only its id.
        case sectionPart = 0x02
        /// `QEMU_VM_SECTION_END`: the last part of an iterative section, naming
        /// only its id.
        case sectionEnd = 0x03
        /// `QEMU_VM_SECTION_FULL`: a device's whole state in one record, with the
        /// section's id, idstr, instance id and version.
        case sectionFull = 0x04
        /// `QEMU_VM_SUBSECTION`: an optional part of a device's state, inside its
        /// section.
        case subsection = 0x05
        /// `QEMU_VM_VMDESCRIPTION`: after the EOF marker, be32 length and the JSON
        /// description.
        case description = 0x06
        /// `QEMU_VM_CONFIGURATION`: the configuration section, right after the
        /// header.
        case configuration = 0x07
        /// `QEMU_VM_COMMAND`: be16 command, be16 length and its data.
        case command = 0x08
        /// `QEMU_VM_SECTION_FOOTER`: ends a section record, with the be32 section id.
        case sectionFooter = 0x7E
    }

    /// A section footer: `0x7e` and the be32 section id.
    public static let footerSize = 5

    /// The idstr of the RAM section, the one section that must be parsed
    /// record by record to get past it.
    public static let ramSectionName = "ram"

    /// Flag bits in the low bits of each be64 word of the RAM section.
    public struct RAMFlags: OptionSet, Sendable {
        /// The flag bits.
        public let rawValue: UInt64
        /// The flags of the bits `rawValue`.
        public init(rawValue: UInt64) { self.rawValue = rawValue }

        /// `RAM_SAVE_FLAG_ZERO`: a page of one repeated byte (zero), the one byte
        /// that follows.
        public static let zero = RAMFlags(rawValue: 0x02)
        /// `RAM_SAVE_FLAG_MEM_SIZE`: the total RAM size (the word's other bits),
        /// then the list of RAM blocks.
        public static let memorySize = RAMFlags(rawValue: 0x04)
        /// `RAM_SAVE_FLAG_PAGE`: a whole target page follows.
        public static let page = RAMFlags(rawValue: 0x08)
        /// `RAM_SAVE_FLAG_EOS`: the end of this part of the RAM section.
        public static let endOfSection = RAMFlags(rawValue: 0x10)
        /// `RAM_SAVE_FLAG_CONTINUE`: the page is in the block of the one before,
        /// whose name is not repeated.
        public static let `continue` = RAMFlags(rawValue: 0x20)
        /// `RAM_SAVE_FLAG_XBZRLE`: an XBZRLE-encoded page: a byte, be16 length,
        /// then that many bytes.
        public static let xbzrle = RAMFlags(rawValue: 0x40)
        /// `RAM_SAVE_FLAG_HOOK`: RDMA's hook, which statetool does not read.
        public static let hook = RAMFlags(rawValue: 0x80)
        /// `RAM_SAVE_FLAG_COMPRESS_PAGE`: a page of QEMU's removed compress
        /// capability, which statetool does not read.
        public static let compressedPage = RAMFlags(rawValue: 0x100)
        /// `RAM_SAVE_FLAG_MULTIFD_FLUSH`: a multifd synchronisation point, with no
        /// data.
        public static let multifdFlush = RAMFlags(rawValue: 0x200)
    }

    /// The page size when the configuration does not say otherwise
    /// (`configuration/target-page-bits` is only sent when it differs).
    public static let defaultTargetPageBits: UInt32 = 12

    /// The `MappedRamHeader` after each RAM block with the mapped-ram capability: be32 version,
    /// be64 page size, be64 bitmap offset, be64 pages offset.
    public static let mappedRAMHeaderSize = 28
    /// The one version QEMU writes (`MAPPED_RAM_HDR_VERSION`).
    public static let mappedRAMVersion: UInt32 = 1

    /// The configuration section's optional subsections.
    enum ConfigurationSubsection {
        static let targetPageBits = "configuration/target-page-bits"
        static let capabilities = "configuration/capabilities"
        static let uuid = "configuration/uuid"
    }
}

/// The subsections that carry a vhost-user back-end's chunk-framed state.
public struct BackEndStateSubsection: Hashable, Sendable {
    /// The subsection's name.
    public let name: String
    /// The vmsd name of the sections (the last component of their idstr) that hold it.
    public let sectionVMSDName: String
    /// Whether the state ends its section: the section footer follows its
    /// terminator directly. virtio-net's sits inside the `virtio` blob, so more
    /// device state follows it.
    public let endsSection: Bool

    /// `vhost-user-fs-backend`, the one subsection of each `vhost-user-fs` section.
    public static let vhostUserFS = BackEndStateSubsection(
        name: "vhost-user-fs-backend", sectionVMSDName: "vhost-user-fs", endsSection: true)
    /// `virtio-net-device/backend`, inside the `virtio` field of a `virtio-net`
    /// section (QEMU 10.0); not listed in the JSON description.
    public static let virtioNet = BackEndStateSubsection(
        name: "virtio-net-device/backend", sectionVMSDName: "virtio-net", endsSection: false)

    /// Every subsection statetool looks for.
    public static let all = [vhostUserFS, virtioNet]

    /// The subsection header: `0x05`, the name's length, the name, be32 version 0.
    public var header: [UInt8] {
        [MigrationFormat.RecordType.subsection.rawValue, UInt8(name.utf8.count)] + Array(name.utf8) + [0, 0, 0, 0]
    }
}
