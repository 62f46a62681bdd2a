import SystemPackage

/// Something the state-stream reader can pull bytes from: a file, a pipe, a
/// decompressor, or memory.
///
/// Sources are read strictly front to back, so a pipe works exactly like a
/// file; a source that can move forward without reading (a file read at
/// explicit offsets) says so by implementing ``skip(_:)``.
public protocol ByteSource: AnyObject {
    /// Reads up to `buffer.count` bytes into `buffer`.
    ///
    /// - Returns: The number of bytes read; `0` only at the end of the input.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(InputError) -> Int

    /// Passes over up to `count` bytes without handing them out.
    ///
    /// - Returns: How many were passed over: fewer than `count` only at the end.
    func skip(_ count: UInt64) throws(InputError) -> UInt64

    /// Whether ``skip(_:)`` reads the bytes it passes over (a pipe) rather
    /// than moving past them (a regular file): what passing over costs, and
    /// what a ``CountingSource`` counts.
    var skipReads: Bool { get }
}

extension ByteSource {
    /// A source that does not implement ``skip(_:)`` reads to skip.
    public var skipReads: Bool { true }

    /// Reads and drops the bytes, 64 KiB at a time: what a pipe can do.
    public func skip(_ count: UInt64) throws(InputError) -> UInt64 {
        try skipByReading(count)
    }

    /// Reads and drops `count` bytes, 64 KiB at a time.
    public func skipByReading(_ count: UInt64) throws(InputError) -> UInt64 {
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(min(count, 1 << 16)), alignment: 16)
        defer { scratch.deallocate() }
        var skipped: UInt64 = 0
        while skipped < count {
            let wanted = UnsafeMutableRawBufferPointer(rebasing: scratch[..<Int(min(count - skipped, UInt64(scratch.count)))])
            let read = try self.read(into: wanted)
            if read == 0 { break }
            skipped += UInt64(read)
        }
        return skipped
    }

    /// Reads the first `count` bytes, or all there are if fewer: for sniffing
    /// what an input holds before handing it on through ``PrefixedSource``.
    /// Memory grows with what arrives (64 KiB at a time), not with `count`.
    public func readPrefix(_ count: Int) throws(InputError) -> [UInt8] {
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: min(count, 1 << 16), alignment: 16)
        defer { scratch.deallocate() }
        var bytes: [UInt8] = []
        while bytes.count < count {
            let read = try self.read(into: UnsafeMutableRawBufferPointer(rebasing: scratch[..<min(count - bytes.count, scratch.count)]))
            if read == 0 { break }
            bytes += UnsafeRawBufferPointer(rebasing: scratch[..<read])
        }
        return bytes
    }
}

/// A failure to get bytes at all, as opposed to a problem in what the bytes say.
///
/// Framing problems are not errors: the reader reports them as ``StreamProblem``
/// values. An `InputError` means the input could not be read, or (for
/// ``InputError/compression(_:)``) that the compressed layer around the stream is
/// broken; the reader turns the latter into a `compression-error` problem.
public enum InputError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The input could not be opened.
    case cannotOpen(Errno)
    /// A `read` call failed.
    case readFailed(Errno)
    /// The zstd layer is corrupt, truncated or followed by garbage.
    case compression(CompressionFailure)
    /// A ``TeeSource`` could not write its copy.
    case copyFailed(OutputError)
    /// The input is compressed in a format statetool cannot read (lzop).
    case unsupportedCompression(Compression)

    /// What failed, in one line; for lzop, how to read it anyway.
    public var description: String {
        switch self {
        case .cannotOpen(let errno): return "cannot open: \(errno)"
        case .readFailed(let errno): return "read failed: \(errno)"
        case .compression(let failure): return failure.description
        case .copyFailed(let error): return error.description
        case .unsupportedCompression(let format):
            return "\(format.rawValue)-compressed input, which statetool cannot read (no maintained library reads its format): decompress it first (lzop -dc)"
        }
    }
}

/// Reads a file descriptor: a regular file, a pipe, a socket or a terminal.
public final class FileDescriptorSource: ByteSource {
    /// The descriptor being read.
    public let fileDescriptor: FileDescriptor
    private let closesOnDeinit: Bool

    /// Reads `fileDescriptor`, closing it when this source goes away if
    /// `closesOnDeinit` is true.
    public init(_ fileDescriptor: FileDescriptor, closesOnDeinit: Bool) {
        self.fileDescriptor = fileDescriptor
        self.closesOnDeinit = closesOnDeinit
    }

    /// Opens `path` for reading, or standard input when `path` is `-`.
    public convenience init(path: String) throws(InputError) {
        if path == "-" {
            self.init(.standardInput, closesOnDeinit: false)
            return
        }
        do {
            let fd = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec])
            self.init(fd, closesOnDeinit: true)
        } catch let errno as Errno {
            throw .cannotOpen(errno)
        } catch {
            throw .cannotOpen(.ioError)
        }
    }

    deinit {
        if closesOnDeinit { try? fileDescriptor.close() }
    }

    /// The size of a regular file, for showing progress; `nil` for a pipe,
    /// socket or terminal. Reading never depends on it.
    public var regularFileSize: UInt64? {
        guard let status = try? fileDescriptor.stat(), status.type == .regular else { return nil }
        return UInt64(status.size)
    }

    /// One `read(2)` of the descriptor at its file position, retried when a
    /// signal interrupts it. Returns the bytes read; 0 at the end.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(InputError) -> Int {
        do {
            return try fileDescriptor.read(into: buffer, retryOnInterrupt: true)
        } catch let errno as Errno {
            throw .readFailed(errno)
        } catch {
            throw .readFailed(.ioError)
        }
    }

    /// Only a regular file is passed over by seeking.
    public var skipReads: Bool { regularFileSize == nil }

    /// A regular file moves its position without reading (`lseek`), so that
    /// a region nobody needs (a mapped-ram file's pages) costs nothing; a pipe
    /// reads and drops.
    public func skip(_ count: UInt64) throws(InputError) -> UInt64 {
        guard let size = regularFileSize, let position = try? fileDescriptor.seek(offset: 0, from: .current) else {
            return try skipByReading(count)
        }
        let skipped = min(count, size - min(size, UInt64(position)))
        do {
            _ = try fileDescriptor.seek(offset: position + Int64(skipped), from: .start)
        } catch {
            throw .readFailed((error as? Errno) ?? .ioError)
        }
        return skipped
    }
}

/// Reads a regular file at explicit offsets (`pread`), from `offset` on,
/// never touching the descriptor's file position; passing over bytes costs
/// no read at all. The descriptor stays its owner's.
public final class PositionalFileSource: ByteSource {
    private let file: FileDescriptor
    /// The offset of the next byte handed out.
    public private(set) var offset: UInt64
    private let size: UInt64

    /// Reads `file` from `offset` to the end it had when this source was made.
    public init(_ file: FileDescriptor, from offset: UInt64 = 0) throws(InputError) {
        self.file = file
        self.offset = offset
        do {
            size = UInt64(try file.stat().size)
        } catch {
            throw .readFailed(error)
        }
    }

    /// One `pread(2)` at ``offset``, which advances; 0 at the end the file had
    /// when this source was made.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(InputError) -> Int {
        guard offset < size else { return 0 }
        let wanted = UnsafeMutableRawBufferPointer(rebasing: buffer[..<Int(min(UInt64(buffer.count), size - offset))])
        do {
            let count = try file.read(fromAbsoluteOffset: Int64(offset), into: wanted, retryOnInterrupt: true)
            offset += UInt64(count)
            return count
        } catch let errno as Errno {
            throw .readFailed(errno)
        } catch {
            throw .readFailed(.ioError)
        }
    }

    /// Always `false`: skipping only moves ``offset``.
    public var skipReads: Bool { false }

    /// Moves ``offset`` forward by `count`, not past the end; returns how far
    /// it moved.
    public func skip(_ count: UInt64) throws(InputError) -> UInt64 {
        let skipped = min(count, size - min(size, offset))
        offset += skipped
        return skipped
    }
}

/// Reads bytes held in memory, at most `maximumReadSize` bytes per call.
///
/// Small read sizes make every split of a chunk across reads reachable, which is
/// what tests and fuzzers want.
public final class ByteArraySource: ByteSource {
    private let bytes: [UInt8]
    private var position = 0
    private let readSizes: (Int) -> Int
    private var reads = 0

    /// Serves `bytes`, each read returning at most `maximumReadSize` bytes.
    public convenience init(_ bytes: [UInt8], maximumReadSize: Int = .max) {
        precondition(maximumReadSize > 0, "a read must be able to return a byte")
        self.init(bytes, readSizes: { _ in maximumReadSize })
    }

    /// Serves `bytes`, the n-th read returning at most `readSizes(n)` bytes
    /// (values below 1 count as 1).
    public init(_ bytes: [UInt8], readSizes: @escaping (Int) -> Int) {
        self.bytes = bytes
        self.readSizes = readSizes
    }

    /// Copies the next bytes, as many as fit in `buffer` and this read's size
    /// allows. Returns the bytes copied; 0 at the end.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(InputError) -> Int {
        let limit = max(1, readSizes(reads))
        reads += 1
        let count = min(buffer.count, limit, bytes.count - position)
        guard count > 0 else { return 0 }
        bytes.withUnsafeBytes { source in
            buffer.baseAddress!.copyMemory(from: source.baseAddress! + position, byteCount: count)
        }
        position += count
        return count
    }
}

/// Serves a few already-read bytes, then the rest of another source.
///
/// Used after sniffing the first bytes of an input: for its compression, or
/// for what it holds.
public final class PrefixedSource: ByteSource {
    private var prefix: [UInt8]
    private var prefixPosition = 0
    private let rest: any ByteSource

    /// Serves `prefix`, then what `rest` has left.
    public init(prefix: [UInt8], rest: any ByteSource) {
        self.prefix = prefix
        self.rest = rest
    }

    /// Copies what is left of the prefix, if any, else reads `rest`: one read
    /// never mixes the two. Returns the bytes read; 0 at the end.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(InputError) -> Int {
        guard prefixPosition < prefix.count else { return try rest.read(into: buffer) }
        let count = min(buffer.count, prefix.count - prefixPosition)
        prefix.withUnsafeBytes { source in
            buffer.baseAddress!.copyMemory(from: source.baseAddress! + prefixPosition, byteCount: count)
        }
        prefixPosition += count
        return count
    }

    /// Whether `rest` reads to skip.
    public var skipReads: Bool { rest.skipReads }

    /// Passes over what is left of the prefix, then skips the rest of `count`
    /// in `rest`.
    public func skip(_ count: UInt64) throws(InputError) -> UInt64 {
        let fromPrefix = min(count, UInt64(prefix.count - prefixPosition))
        prefixPosition += Int(fromPrefix)
        return fromPrefix + (count > fromPrefix ? try rest.skip(count - fromPrefix) : 0)
    }
}

/// Passes reads and skips on to `source`, counting the bytes read: what a
/// reader of a large file really took of it. Skipped bytes count where
/// `source` reads them to skip (``ByteSource/skipReads``).
public final class CountingSource: ByteSource {
    private let source: any ByteSource
    /// Bytes handed out so far, and skipped ones where skipping reads them.
    public private(set) var bytesRead: UInt64 = 0

    /// Counts what is read from `source`.
    public init(_ source: any ByteSource) { self.source = source }

    /// Whether `source` reads to skip.
    public var skipReads: Bool { source.skipReads }

    /// Reads from `source`, adding the count to ``bytesRead``.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(InputError) -> Int {
        let count = try source.read(into: buffer)
        bytesRead += UInt64(count)
        return count
    }

    /// Skips in `source`, adding what it passed over to ``bytesRead`` only when
    /// `source` reads to skip.
    public func skip(_ count: UInt64) throws(InputError) -> UInt64 {
        let skipped = try source.skip(count)
        if source.skipReads { bytesRead += skipped }
        return skipped
    }
}
