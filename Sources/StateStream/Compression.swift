/// How a state stream or a migration file is stored on disk or in a pipe.
///
/// Detected from the content, never from a file name: see ``detect(leadingBytes:)``.
/// libvirt save images name theirs in their header (and the content must agree).
public enum Compression: String, Sendable, Codable, CaseIterable {
    /// Raw: the bytes as QEMU wrote them.
    case none
    /// One or more zstd frames (skippable frames allowed).
    case zstd
    /// One or more gzip members (zlib), as `gzip -c` writes them.
    case gzip
    /// One or more bzip2 streams (libbz2), as `bzip2 -c` writes them.
    case bzip2
    /// One or more xz streams (liblzma), as `xz -c` writes them.
    case xz
    /// lzop's container: recognised so that it can be named, but not read (no
    /// maintained library reads lzop's format; liblzo2 holds only the codec).
    case lzop

    /// How many leading bytes ``detect(leadingBytes:)`` needs to decide.
    public static let magicLength = 6

    /// Decides the compression from the first bytes of an input.
    ///
    /// - zstd: a frame starts with the little-endian magic `0xFD2FB528` (bytes
    ///   `28 B5 2F FD`), a skippable frame with `0x184D2A50` to `0x184D2A5F`;
    /// - gzip: `1F 8B 08` (deflate); bzip2: `BZh` and a block size `1` to `9`;
    ///   xz: `FD 37 7A 58 5A 00`; lzop: `89 4C 5A 4F 00 0D`.
    ///
    /// Anything else, including an input shorter than the magic, is raw. A raw
    /// state stream whose first chunk length happens to spell one of these (529 MiB
    /// and more) is read as compressed; QEMU never writes chunks that large.
    public static func detect(leadingBytes bytes: some Collection<UInt8>) -> Compression {
        let leading = Array(bytes.prefix(magicLength))
        if leading.count >= 4 {
            let magic = leading.readInteger(endianness: .little, as: UInt32.self) ?? 0
            if magic == 0xFD2F_B528 || magic & 0xFFFF_FFF0 == 0x184D_2A50 { return .zstd }
        }
        if leading.starts(with: [0x1F, 0x8B, 0x08]) { return .gzip }
        if leading.count >= 4, leading.starts(with: [0x42, 0x5A, 0x68]), (0x31...0x39).contains(leading[3]) { return .bzip2 }
        if leading.starts(with: [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]) { return .xz }
        if leading.starts(with: [0x89, 0x4C, 0x5A, 0x4F, 0x00, 0x0D]) { return .lzop }
        return .none
    }

    /// What one independently decodable part of the format is called, for messages.
    var unitName: String {
        switch self {
        case .none: return "input"
        case .zstd: return "zstd frame"
        case .gzip: return "gzip member"
        case .bzip2: return "bzip2 stream"
        case .xz: return "xz stream"
        case .lzop: return "lzop file"
        }
    }

    /// A decompressor of this format reading `compressed`, whose first byte is
    /// at `offset` of the stored input (offsets in failures count from there).
    ///
    /// - Throws: ``InputError/unsupportedCompression(_:)`` for lzop.
    public func decompressor(reading compressed: any ByteSource, startingAt offset: UInt64 = 0) throws(InputError) -> (any DecompressingByteSource)? {
        switch self {
        case .none: return nil
        case .zstd: return DecompressingSource(ZstdDecoder(), compressed: compressed, startingAt: offset)
        case .gzip: return DecompressingSource(GzipDecoder(), compressed: compressed, startingAt: offset)
        case .bzip2: return DecompressingSource(Bzip2Decoder(), compressed: compressed, startingAt: offset)
        case .xz: return DecompressingSource(XzDecoder(), compressed: compressed, startingAt: offset)
        case .lzop: throw .unsupportedCompression(self)
        }
    }
}

/// A source that decompresses another and counts what it consumed of it.
public protocol DecompressingByteSource: ByteSource {
    /// The offset in the stored input after the last compressed byte consumed.
    var compressedBytesRead: UInt64 { get }
}

/// Why a compressed layer could not be decoded, and where.
public struct CompressionFailure: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Reason: Hashable, Sendable {
        /// The input ended inside a frame (a gzip member, a bzip2 or xz stream).
        case truncatedFrame(inputLength: UInt64)
        /// The frame's checksum does not match its content.
        case checksumMismatch
        /// Bytes that do not begin a frame of the format, after a complete frame.
        case notAFrame
        /// The frame needs more memory than the decoder allows (128 MiB).
        case windowTooLarge
        /// Any other error of the library, with its name for it.
        case corrupt(String)
    }

    /// The format whose layer failed.
    public let format: Compression
    /// Offset in the compressed input of the frame that failed.
    public let frameOffset: UInt64
    /// What went wrong.
    public let reason: Reason

    /// A failure of the `format` layer (zstd unless given) in the frame at
    /// `frameOffset` of the compressed input.
    public init(format: Compression = .zstd, frameOffset: UInt64, reason: Reason) {
        self.format = format
        self.frameOffset = frameOffset
        self.reason = reason
    }

    /// What went wrong, in one line naming the frame's compressed offset.
    public var description: String {
        let unit = format.unitName
        switch reason {
        case .truncatedFrame(let inputLength):
            return "the \(unit) starting at compressed offset \(frameOffset) is truncated: the input ends at \(inputLength)"
        case .checksumMismatch:
            return "checksum mismatch in the \(unit) starting at compressed offset \(frameOffset)"
        case .notAFrame:
            return "data at compressed offset \(frameOffset) is not a \(unit) (trailing garbage after the last \(unit.split(separator: " ").last!))"
        case .windowTooLarge:
            return format == .zstd
                ? "the zstd frame starting at compressed offset \(frameOffset) needs a window above 128 MiB"
                : "the \(unit) starting at compressed offset \(frameOffset) needs more than 128 MiB to decode"
        case .corrupt(let name):
            return "corrupt \(unit) starting at compressed offset \(frameOffset): \(name)"
        }
    }
}
