import CZstd

/// Compresses what is written to it into one zstd frame, through libzstd's
/// streaming compressor, with a content checksum.
///
/// ``finish()`` ends the frame. `threads` above 0 hands the work to libzstd's own
/// worker threads, as `zstd -T` does.
public final class ZstdCompressingSink: ByteSink {
    private let destination: any ByteSink
    private let context: OpaquePointer
    private let output: UnsafeMutableRawBufferPointer

    /// The default level, as the `zstd` CLI's.
    public static let defaultLevel: Int32 = 3

    /// The levels libzstd accepts.
    public static var levels: ClosedRange<Int32> { ZSTD_minCLevel()...ZSTD_maxCLevel() }

    /// Compresses into `destination` at `level` with `threads` workers (0: none).
    public init(_ destination: any ByteSink, level: Int32 = defaultLevel, threads: Int32 = 0) throws(OutputError) {
        guard let context = ZSTD_createCCtx() else { throw .compression("zstd: cannot allocate a compression context") }
        self.context = context
        self.destination = destination
        self.output = .allocate(byteCount: ZSTD_CStreamOutSize(), alignment: 16)
        try check(ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level))
        try check(ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1))
        if threads > 0 {
            try check(ZSTD_CCtx_setParameter(context, ZSTD_c_nbWorkers, threads))
        }
    }

    deinit {
        ZSTD_freeCCtx(context)
        output.deallocate()
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws(OutputError) {
        var input = ZSTD_inBuffer(src: bytes.baseAddress, size: bytes.count, pos: 0)
        while input.pos < input.size {
            try compress(&input, ZSTD_e_continue)
        }
    }

    public func finish() throws(OutputError) {
        var input = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
        while try compress(&input, ZSTD_e_end) != 0 {}
        try destination.finish()
    }

    /// One call of the streaming compressor; returns what libzstd has left to flush.
    @discardableResult
    private func compress(_ input: inout ZSTD_inBuffer, _ directive: ZSTD_EndDirective) throws(OutputError) -> Int {
        var out = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
        let remaining = ZSTD_compressStream2(context, &out, &input, directive)
        try check(remaining)
        if out.pos > 0 {
            try destination.write(UnsafeRawBufferPointer(rebasing: output[..<out.pos]))
        }
        return remaining
    }

    private func check(_ result: Int) throws(OutputError) {
        if ZSTD_isError(result) != 0 {
            throw .compression("zstd: " + String(cString: ZSTD_getErrorName(result)))
        }
    }
}
