import SystemPackage

/// An input holding a state stream or a migration file, raw or compressed
/// (zstd, gzip, bzip2, xz), with its compression detected from its first bytes.
///
/// The input is read strictly forward (it may be a pipe): detection reads the
/// first bytes and hands them on to whatever reads the stream.
public struct StateStreamInput {
    /// How the stream is stored.
    public let compression: Compression
    /// The framed stream, decompressed if needed.
    public let framedSource: any ByteSource
    private let decompressor: (any DecompressingByteSource)?
    /// The offset, counted in decompressed bytes of the whole input, of the
    /// first byte `framedSource` hands out: 0, except for a stream inside a
    /// container (a libvirt save image's QEMU stream starts after its header).
    public let baseOffset: UInt64

    /// The input's size when it is a regular file, for showing progress.
    public let regularFileSize: UInt64?
    /// The input's descriptor when it is a regular file, for reading it again
    /// by offset (`replay` splices from it); `nil` for pipes and memory.
    public let regularFile: FileDescriptor?

    /// Reads `source`, detecting its compression from its first bytes.
    public init(source: any ByteSource) throws(InputError) {
        try self.init(source: source, file: source as? FileDescriptorSource)
    }

    /// Reads `source`, detecting its compression from its first bytes; `file`
    /// is what `source` reads from (a ``PrefixedSource`` after sniffing it), for
    /// its size and for reading it again by offset.
    public init(source: any ByteSource, file: FileDescriptorSource?) throws(InputError) {
        let size = file?.regularFileSize
        let leading = try source.readPrefix(Compression.magicLength)
        try self.init(
            contents: PrefixedSource(prefix: leading, rest: source), compression: Compression.detect(leadingBytes: leading),
            regularFile: size == nil ? nil : file?.fileDescriptor, regularFileSize: size, baseOffset: 0, storedOffset: 0)
    }

    /// Reads `contents`, stored with `compression`, which begins at `storedOffset`
    /// of the input as stored and at `baseOffset` of the input decompressed: the
    /// part of a container after its header. `file` is the container's
    /// descriptor when it is a regular file, for reading it again by offset.
    public init(
        contents: any ByteSource, compression: Compression, regularFile file: FileDescriptor?, regularFileSize: UInt64?,
        baseOffset: UInt64, storedOffset: UInt64
    ) throws(InputError) {
        self.compression = compression
        self.regularFile = file
        self.regularFileSize = regularFileSize
        self.baseOffset = baseOffset
        decompressor = try compression.decompressor(reading: contents, startingAt: storedOffset)
        framedSource = decompressor ?? contents
    }

    /// Reads the framed bytes of `other` through `source`, a source wrapped
    /// around `other.framedSource`: keeps what `other` says of its storage.
    public init(framed source: any ByteSource, like other: StateStreamInput) {
        compression = other.compression
        framedSource = source
        decompressor = other.decompressor
        baseOffset = other.baseOffset
        regularFileSize = other.regularFileSize
        regularFile = other.regularFile
    }

    /// The first `count` framed bytes (fewer if the input is shorter), and an
    /// input that hands them out again: for telling what the input holds
    /// before reading it as a stream, also from a pipe.
    public func readingAhead(_ count: Int) throws(InputError) -> (prefix: [UInt8], input: StateStreamInput) {
        let prefix = try framedSource.readPrefix(count)
        return (prefix, StateStreamInput(framed: PrefixedSource(prefix: prefix, rest: framedSource), like: self))
    }

    /// Opens the file at `path`, or standard input for `-`.
    public init(path: String) throws(InputError) {
        try self.init(source: FileDescriptorSource(path: path))
    }

    /// The offset in the stored input after the last compressed byte consumed,
    /// for compressed input; `nil` for raw input.
    public var compressedBytesRead: UInt64? { decompressor?.compressedBytesRead }

    /// How far into the input (as stored, compressed or not) `reader` has read.
    public func bytesConsumed(by reader: borrowing StateStreamReader) -> UInt64 {
        compressedBytesRead ?? reader.framedBytesRead
    }
}
