import StateStream

/// How a command writes a stream: as it is, or zstd-compressed.
public enum OutputCompression: Sendable, Hashable {
    /// Uncompressed, through a buffer.
    case none
    /// zstd at `level` with `threads` workers (0: on the calling thread), with
    /// a content checksum.
    case zstd(level: Int32 = ZstdCompressingSink.defaultLevel, threads: Int32 = 0)

    /// Where the stream goes: a compressor writing into `file`, or `file`
    /// itself through a buffer. Call `finish()` on it when done.
    public func sink(into file: OutputFile) throws(OutputError) -> any ByteSink {
        switch self {
        case .none: return BufferedSink(file)
        case .zstd(let level, let threads): return try ZstdCompressingSink(file, level: level, threads: threads)
        }
    }
}
