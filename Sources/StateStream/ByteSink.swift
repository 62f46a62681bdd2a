import SystemPackage

/// Somewhere bytes go: a file, a pipe, a compressor, a buffer.
public protocol ByteSink: AnyObject {
    /// Writes all of `bytes`.
    func write(_ bytes: UnsafeRawBufferPointer) throws(OutputError)

    /// Completes what was written: writes out anything held back (a buffer, the
    /// end of a zstd frame), then finishes the sink it writes to, if any.
    func finish() throws(OutputError)
}

extension ByteSink {
    /// Writes all of `bytes`.
    public func write(_ bytes: ArraySlice<UInt8>) throws(OutputError) {
        try bytes.withUnsafeBytes { buffer in
            Result { () throws(OutputError) in try write(buffer) }
        }.get()
    }

    /// Writes all of `bytes`.
    public func write(_ bytes: [UInt8]) throws(OutputError) {
        try write(bytes[...])
    }
}

/// A failure to write output.
public enum OutputError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The output (or its temporary file) could not be created.
    case cannotCreate(path: String, Errno)
    /// A `write` call failed (`EPIPE` when a pipe's reader went away).
    case writeFailed(Errno)
    /// The output path names one of the inputs.
    case wouldOverwriteInput(path: String)
    /// Binary output would go to a terminal.
    case refusingTerminal
    /// The finished temporary file could not be renamed into place.
    case cannotCommit(path: String, Errno)
    /// Bytes already written to a pipe or device cannot be taken back.
    case cannotRewind
    /// The compression library failed, with its name and its word for the error.
    case compression(String)

    /// What failed, in one line, naming the path and the `errno` where there
    /// are some.
    public var description: String {
        switch self {
        case .cannotCreate(let path, let errno): return "cannot create \(path): \(errno)"
        case .writeFailed(let errno): return "write failed: \(errno)"
        case .wouldOverwriteInput(let path): return "refusing to write over the input file \(path)"
        case .refusingTerminal: return "refusing to write binary data to a terminal (use -o FILE or a pipe)"
        case .cannotCommit(let path, let errno): return "cannot move the finished output into place at \(path): \(errno)"
        case .cannotRewind: return "bytes already written to a pipe cannot be taken back (use -o FILE)"
        case .compression(let name): return "compression failed: \(name)"
        }
    }
}

/// Collects what is written in memory: for payloads small enough to decode
/// whole, and for tests.
public final class ByteArraySink: ByteSink {
    /// Everything written so far.
    public private(set) var bytes: [UInt8] = []
    /// How many times ``finish()`` was called.
    public private(set) var finishCount = 0

    /// An empty sink.
    public init() {}

    /// Appends `buffer` to ``bytes``; never fails.
    public func write(_ buffer: UnsafeRawBufferPointer) throws(OutputError) {
        bytes += buffer
    }

    /// Counts the call in ``finishCount``; never fails.
    public func finish() throws(OutputError) {
        finishCount += 1
    }
}

/// Collects small writes into large ones; passes large writes straight through.
public final class BufferedSink: ByteSink {
    private let destination: any ByteSink
    private let buffer: UnsafeMutableRawBufferPointer
    private var used = 0

    /// Writes to `destination` in blocks of `capacity` bytes.
    public init(_ destination: any ByteSink, capacity: Int = 1 << 20) {
        self.destination = destination
        self.buffer = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit { buffer.deallocate() }

    /// Buffers `bytes`, writing out the buffer first when they do not fit;
    /// bytes as many as the buffer holds, or more, go straight through.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(OutputError) {
        if used + bytes.count > buffer.count { try drain() }
        if bytes.count >= buffer.count {
            try destination.write(bytes)
            return
        }
        (buffer.baseAddress! + used).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        used += bytes.count
    }

    /// Writes out what is buffered, then finishes the destination.
    public func finish() throws(OutputError) {
        try drain()
        try destination.finish()
    }

    /// Writes out what is buffered, without finishing the destination: before
    /// something else writes to it directly.
    public func flush() throws(OutputError) {
        try drain()
    }

    private func drain() throws(OutputError) {
        guard used > 0 else { return }
        try destination.write(UnsafeRawBufferPointer(rebasing: buffer[..<used]))
        used = 0
    }
}

/// Hands every byte read from a source to a sink as well: one pass both checks
/// a stream (through the reader) and copies it exactly.
public final class TeeSource: ByteSource {
    private let source: any ByteSource
    private let sink: any ByteSink

    /// Reads `source`, writing each read's bytes to `sink` as well. The sink is
    /// not finished: that is the caller's.
    public init(_ source: any ByteSource, copyingTo sink: any ByteSink) {
        self.source = source
        self.sink = sink
    }

    /// Reads from the source into `buffer` and writes the same bytes to the
    /// sink. Returns the bytes read; 0 at the end.
    ///
    /// - Throws: ``InputError/copyFailed(_:)`` when the sink fails, besides the
    ///   source's own errors.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(InputError) -> Int {
        let count = try source.read(into: buffer)
        do {
            try sink.write(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        } catch {
            throw .copyFailed(error)
        }
        return count
    }
}
