/// Writes a chunk-framed state stream: `[be32 length][bytes]` per chunk, then
/// the zero-length terminator.
public struct StateStreamWriter: ~Copyable {
    private let sink: any ByteSink
    /// Data chunks written.
    public private(set) var chunkCount = 0
    /// Payload bytes written.
    public private(set) var payloadBytes: UInt64 = 0
    /// Framed bytes written, length fields and terminator included.
    public private(set) var framedBytes: UInt64 = 0

    /// Writes the stream into `sink`.
    public init(sink: any ByteSink) {
        self.sink = sink
    }

    /// Writes one chunk holding `payload` (1 byte to 4 GiB - 1).
    public mutating func writeChunk(_ payload: UnsafeRawBufferPointer) throws(OutputError) {
        try writeChunkHeader(length: UInt32(payload.count))
        try writeChunkBody(payload)
    }

    /// Writes the length field of a chunk whose body follows through
    /// ``writeChunkBody(_:)``, for bodies too long to hold at once.
    public mutating func writeChunkHeader(length: UInt32) throws(OutputError) {
        precondition(length > 0, "a zero length is the terminator, not a chunk")
        try sink.write(Self.lengthField(length))
        chunkCount += 1
        framedBytes += UInt64(StateStreamFormat.lengthFieldSize)
    }

    /// Writes (part of) the body of the chunk whose header was written last.
    public mutating func writeChunkBody(_ bytes: UnsafeRawBufferPointer) throws(OutputError) {
        try sink.write(bytes)
        payloadBytes += UInt64(bytes.count)
        framedBytes += UInt64(bytes.count)
    }

    /// Writes the terminator and finishes the sink.
    public mutating func finish() throws(OutputError) {
        try sink.write(StateStreamFormat.terminator)
        framedBytes += UInt64(StateStreamFormat.lengthFieldSize)
        try sink.finish()
    }

    /// The big-endian length field for `length`.
    public static func lengthField(_ length: UInt32) -> [UInt8] {
        length.bytes(endianness: .big)
    }
}

/// Frames a payload into chunks of one size (the last one shorter), as QEMU
/// would write it with that read size: `frame` and `rechunk` use it.
///
/// It holds at most one chunk's worth of payload (`chunkSize` bytes, which the
/// caller chooses, never the input).
public struct PayloadFramer: ~Copyable {
    private var writer: StateStreamWriter
    private let pending: UnsafeMutableRawBufferPointer
    private var pendingCount = 0

    /// The largest chunk size accepted: 16 MiB, far above QEMU's 1 MiB.
    public static let maximumChunkSize = 16 << 20

    /// Frames into `sink` with chunks of `chunkSize` bytes (1 to ``maximumChunkSize``).
    public init(chunkSize: Int, sink: any ByteSink) {
        precondition((1...Self.maximumChunkSize).contains(chunkSize), "chunk size out of range")
        writer = StateStreamWriter(sink: sink)
        pending = .allocate(byteCount: chunkSize, alignment: 16)
    }

    deinit { pending.deallocate() }

    /// Data chunks written so far.
    public var chunkCount: Int { writer.chunkCount }
    /// Payload bytes written so far.
    public var payloadBytes: UInt64 { writer.payloadBytes }
    /// Framed bytes written so far.
    public var framedBytes: UInt64 { writer.framedBytes }

    /// Adds payload bytes.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) throws(OutputError) {
        var rest = bytes[...]
        if pendingCount > 0 {
            let taken = min(rest.count, pending.count - pendingCount)
            (pending.baseAddress! + pendingCount).copyMemory(from: bytes.baseAddress! + rest.startIndex, byteCount: taken)
            pendingCount += taken
            rest = rest.dropFirst(taken)
            guard pendingCount == pending.count else { return }
            try writer.writeChunk(UnsafeRawBufferPointer(pending))
            pendingCount = 0
        }
        while rest.count >= pending.count {
            try writer.writeChunk(UnsafeRawBufferPointer(rebasing: rest.prefix(pending.count)))
            rest = rest.dropFirst(pending.count)
        }
        if !rest.isEmpty {
            pending.baseAddress!.copyMemory(from: bytes.baseAddress! + rest.startIndex, byteCount: rest.count)
            pendingCount = rest.count
        }
    }

    /// Adds payload bytes.
    public mutating func append(_ bytes: ArraySlice<UInt8>) throws(OutputError) {
        try bytes.withUnsafeBytes { buffer in
            Result { () throws(OutputError) in try append(buffer) }
        }.get()
    }

    /// Writes the last, shorter chunk if any, the terminator, and finishes the sink.
    public mutating func finish() throws(OutputError) {
        if pendingCount > 0 {
            try writer.writeChunk(UnsafeRawBufferPointer(rebasing: pending[..<pendingCount]))
            pendingCount = 0
        }
        try writer.finish()
    }
}
