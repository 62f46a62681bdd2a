import StateStream

/// How libvirt stored the QEMU stream of a save image: the header's `format`
/// field (`virQEMUSaveFormat` in libvirt's `src/qemu/qemu_saveimage.h`).
public enum SaveImageFormat: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    /// The QEMU stream as QEMU wrote it, uncompressed.
    case raw = 0
    /// Compressed by `gzip`.
    case gzip = 1
    /// Compressed by `bzip2`.
    case bzip2 = 2
    /// Compressed by `xz`.
    case xz = 3
    /// Compressed by `lzop`.
    case lzop = 4
    /// Compressed by `zstd`.
    case zstd = 5
    /// QEMU's `mapped-ram`: RAM pages at fixed offsets of a sparse file (libvirt 10.x and later).
    case sparse = 6

    /// The name libvirt's `save_image_format` and `--image-format` use.
    public var description: String {
        switch self {
        case .raw: return "raw"
        case .gzip: return "gzip"
        case .bzip2: return "bzip2"
        case .xz: return "xz"
        case .lzop: return "lzop"
        case .zstd: return "zstd"
        case .sparse: return "sparse"
        }
    }

    /// The compression of the QEMU stream: none for ``sparse`` too, whose
    /// stream is a mapped-ram file placed at offsets of the image.
    public var compression: Compression {
        switch self {
        case .raw: return Compression.none
        case .gzip: return .gzip
        case .bzip2: return .bzip2
        case .xz: return .xz
        case .lzop: return .lzop
        case .zstd: return .zstd
        case .sparse: return Compression.none
        }
    }
}

/// The fixed 92-byte header at the start of a libvirt save image
/// (`virQEMUSaveHeader`): magic, version, the length of the XML that follows,
/// whether the domain was running, the format of the QEMU stream, and where
/// the cookie starts.
///
/// Its integers are in the byte order of the host that wrote it; libvirt
/// swaps them when `version` reads as more than it writes, and so does
/// ``init(parsing:)``. ``bytes`` writes them back in the order they were read.
public struct SaveImageHeader: Sendable, Hashable {
    /// The first 16 bytes.
    public enum Magic: String, Sendable {
        /// A complete save.
        case complete = "LibvirtQemudSave"
        /// What libvirt writes until the save has finished: a save that never did.
        case partial = "LibvirtQemudPart"
    }

    /// The header's size.
    public static let byteCount = 92
    /// What every magic starts with, for recognising an image from its first bytes.
    public static let magicPrefix = Array("LibvirtQemud".utf8)
    /// The newest version libvirt writes (2 adds the cookie).
    public static let newestVersion: UInt32 = 2

    /// The first 16 bytes: whether the save finished.
    public var magic: Magic
    /// The header's version, at offset 16: 1, or 2 with a cookie.
    public var version: UInt32
    /// Bytes of XML after the header: the domain XML, the cookie, padding.
    public var dataLength: UInt32
    /// Whether the domain runs on after a restore (`virsh restore` without `--paused`).
    public var wasRunning: UInt32
    /// How the QEMU stream after the XML is stored, at offset 28.
    public var format: SaveImageFormat
    /// The length of the domain XML with its NUL, where the cookie starts; 0 for
    /// none. Version 1 has no cookie (the word is reserved there).
    public var cookieOffset: UInt32
    /// The 14 reserved words, kept as they were.
    public var unused: [UInt32]
    /// The byte order the integers were read in.
    public var isBigEndian: Bool

    /// Where the XML starts.
    public static var dataOffset: UInt64 { UInt64(byteCount) }
    /// Where the QEMU stream starts.
    public var streamOffset: UInt64 { Self.dataOffset + UInt64(dataLength) }

    /// Whether `bytes` begin like a save image (either magic).
    public static func recognises(_ bytes: some Collection<UInt8>) -> Bool {
        bytes.starts(with: magicPrefix)
    }

    /// Reads the header from its 92 bytes, checking each field.
    ///
    /// - Throws: ``SaveImageProblem`` naming the field's offset.
    public init(parsing bytes: [UInt8]) throws(SaveImageProblem) {
        guard bytes.count >= Self.byteCount else {
            throw SaveImageProblem(.truncatedFile, at: UInt64(bytes.count), "the file ends inside libvirt's 92-byte header")
        }
        guard let magic = String(decoding: bytes[0..<16], as: UTF8.self).nilIfUnknown.flatMap(Magic.init(rawValue:)) else {
            throw SaveImageProblem(.notASaveImage, at: 0, "no LibvirtQemudSave magic")
        }
        self.magic = magic
        func word(_ index: Int, bigEndian: Bool) -> UInt32 {
            bytes[(16 + 4 * index)...].readInteger(endianness: bigEndian ? .big : .little, as: UInt32.self)!
        }
        // Host order here is little-endian; libvirt swaps when the version reads as too new.
        isBigEndian = word(0, bigEndian: false) > Self.newestVersion
        let read = { [isBigEndian] (index: Int) in word(index, bigEndian: isBigEndian) }
        version = read(0)
        guard (1...Self.newestVersion).contains(version) else {
            throw SaveImageProblem(
                .unsupportedVersion, at: 16,
                "libvirt save image version \(word(0, bigEndian: false)) (\(word(0, bigEndian: true)) byte-swapped): libvirt writes 1 and 2")
        }
        dataLength = read(1)
        wasRunning = read(2)
        guard let format = SaveImageFormat(rawValue: read(3)) else {
            throw SaveImageProblem(.badHeader, at: 28, "format \(read(3)) is none of libvirt's (0 raw to 6 sparse)")
        }
        self.format = format
        cookieOffset = read(4)
        unused = (5..<19).map(read)
        guard dataLength > 0 else {
            throw SaveImageProblem(.badHeader, at: 20, "data_len is 0: there is no domain XML")
        }
        guard version < 2 || cookieOffset <= dataLength else {
            throw SaveImageProblem(.badHeader, at: 32, "cookieOffset \(cookieOffset) is beyond data_len \(dataLength)")
        }
    }

    /// The 92 bytes, in the byte order they were read in.
    public var bytes: [UInt8] {
        var bytes = Array(magic.rawValue.utf8)
        let words = [version, dataLength, wasRunning, format.rawValue, cookieOffset] + unused
        for word in words { bytes += word.bytes(endianness: isBigEndian ? .big : .little) }
        return bytes
    }
}

extension String {
    /// `nil` for a string with replacement characters (bytes that were not UTF-8).
    fileprivate var nilIfUnknown: String? { contains("\u{FFFD}") ? nil : self }
}
