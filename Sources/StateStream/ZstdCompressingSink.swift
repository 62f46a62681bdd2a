import CZstd

/// Compresses what is written to it into one zstd frame, through libzstd's
/// streaming compressor, with a content checksum: a ``CompressingSink`` with
/// the zstd encoder, as the other formats are.
///
/// ``CompressingSink/finish()`` ends the frame. `threads` above 0 hands the
/// work to libzstd's own worker threads, as `zstd -T` does.
public typealias ZstdCompressingSink = CompressingSink<ZstdEncoder>

extension CompressingSink where Encoder == ZstdEncoder {
    /// The default level, as the `zstd` CLI's.
    public static var defaultLevel: Int32 { ZstdEncoder.defaultLevel }

    /// The levels libzstd accepts.
    public static var levels: ClosedRange<Int32> { ZSTD_minCLevel()...ZSTD_maxCLevel() }

    /// Compresses into `destination` at `level` with `threads` workers (0: none).
    public convenience init(_ destination: any ByteSink, level: Int32 = ZstdEncoder.defaultLevel, threads: Int32 = 0) throws(OutputError) {
        self.init(try ZstdEncoder(level: level, threads: threads), into: destination)
    }
}

/// zstd through libzstd's `ZSTD_compressStream2`, with a content checksum.
public final class ZstdEncoder: StreamEncoder {
    /// The default level, as the `zstd` CLI's.
    public static let defaultLevel: Int32 = 3
    private let context: OpaquePointer

    init(level: Int32, threads: Int32) throws(OutputError) {
        guard let context = ZSTD_createCCtx() else { throw .compression("zstd: cannot allocate a compression context") }
        self.context = context
        try check(ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level))
        try check(ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1))
        if threads > 0 {
            try check(ZSTD_CCtx_setParameter(context, ZSTD_c_nbWorkers, threads))
        }
    }

    deinit { ZSTD_freeCCtx(context) }

    /// One `ZSTD_compressStream2` call: `ZSTD_e_continue`, or `ZSTD_e_end`
    /// when `finishing`. The frame is complete once a finishing call has
    /// flushed everything.
    ///
    /// - Throws: ``OutputError/compression(_:)`` with libzstd's error name.
    public func encode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, finishing: Bool)
        throws(OutputError) -> (consumed: Int, produced: Int, finished: Bool)
    {
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        var outBuffer = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
        let remaining = ZSTD_compressStream2(context, &outBuffer, &inBuffer, finishing ? ZSTD_e_end : ZSTD_e_continue)
        try check(remaining)
        return (inBuffer.pos, outBuffer.pos, finishing && remaining == 0)
    }

    private func check(_ result: Int) throws(OutputError) {
        if ZSTD_isError(result) != 0 {
            throw .compression("zstd: " + String(cString: ZSTD_getErrorName(result)))
        }
    }
}
