import SystemPackage

/// An input holding a state stream, raw or zstd-compressed, with its compression
/// detected from its first bytes.
///
/// The input is read strictly forward (it may be a pipe): detection reads the
/// first four bytes and hands them on to whatever reads the stream.
public struct StateStreamInput {
    /// How the stream is stored.
    public let compression: Compression
    /// The framed stream, decompressed if needed.
    public let framedSource: any ByteSource
    private let decompressor: ZstdDecompressingSource?

    /// The input's size when it is a regular file, for showing progress.
    public let regularFileSize: UInt64?
    /// The input's descriptor when it is a regular file, for reading it again
    /// by offset (`replay` splices from it); `nil` for pipes and memory.
    public let regularFile: FileDescriptor?

    /// Reads `source`, detecting its compression from its first bytes.
    public init(source: any ByteSource) throws(InputError) {
        let file = source as? FileDescriptorSource
        regularFileSize = file?.regularFileSize
        regularFile = regularFileSize == nil ? nil : file?.fileDescriptor
        let leading = try source.readPrefix(Compression.magicLength)
        let replayed = PrefixedSource(prefix: leading, rest: source)
        compression = Compression.detect(leadingBytes: leading)
        switch compression {
        case .none:
            decompressor = nil
            framedSource = replayed
        case .zstd:
            let zstd = ZstdDecompressingSource(compressed: replayed)
            decompressor = zstd
            framedSource = zstd
        }
    }

    /// Reads the framed bytes of `other` through `source`, a source wrapped
    /// around `other.framedSource`: keeps what `other` says of its storage.
    public init(framed source: any ByteSource, like other: StateStreamInput) {
        compression = other.compression
        framedSource = source
        decompressor = other.decompressor
        regularFileSize = other.regularFileSize
        regularFile = other.regularFile
    }

    /// Opens the file at `path`, or standard input for `-`.
    public init(path: String) throws(InputError) {
        try self.init(source: FileDescriptorSource(path: path))
    }

    /// Compressed bytes consumed so far, for zstd input; `nil` for raw input.
    public var compressedBytesRead: UInt64? { decompressor?.compressedBytesRead }

    /// How far into the input (as stored, compressed or not) `reader` has read.
    public func bytesConsumed(by reader: borrowing StateStreamReader) -> UInt64 {
        compressedBytesRead ?? reader.framedBytesRead
    }
}
