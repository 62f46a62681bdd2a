import CBzip2
import CLzma
import CZlib

/// One streaming encoder of a maintained library (libzstd, zlib, libbz2,
/// liblzma), driven by ``CompressingSink``.
public protocol StreamEncoder: AnyObject {
    /// Encodes from `input` into `output`; `finishing` once all input was given.
    ///
    /// - Returns: Bytes consumed and produced, and whether the frame is complete.
    func encode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, finishing: Bool)
        throws(OutputError) -> (consumed: Int, produced: Int, finished: Bool)
}

/// Compresses what is written to it into one zstd frame, gzip member, bzip2
/// stream or xz stream, at the level its command-line tool uses by default
/// (zstd's is settable, ``ZstdCompressingSink``), so that `zstd -t`,
/// `gzip -t`, `bzip2 -t` and `xz -t` take the result; ``finish()`` ends it.
public final class CompressingSink<Encoder: StreamEncoder>: ByteSink {
    private let encoder: Encoder
    private let destination: any ByteSink
    private let output = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)

    /// Compresses with `encoder` into `destination`.
    public init(_ encoder: Encoder, into destination: any ByteSink) {
        self.encoder = encoder
        self.destination = destination
    }

    deinit { output.deallocate() }

    /// Compresses all of `bytes`, writing what the encoder produces to the
    /// destination as it comes.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(OutputError) {
        var rest = bytes
        while !rest.isEmpty {
            let step = try encoder.encode(rest, into: output, finishing: false)
            try emit(step.produced)
            rest = UnsafeRawBufferPointer(rebasing: rest[step.consumed...])
        }
    }

    /// Ends the frame (member, stream), writes out its last bytes, then
    /// finishes the destination.
    public func finish() throws(OutputError) {
        while true {
            let step = try encoder.encode(UnsafeRawBufferPointer(start: nil, count: 0), into: output, finishing: true)
            try emit(step.produced)
            if step.finished { break }
        }
        try destination.finish()
    }

    private func emit(_ count: Int) throws(OutputError) {
        if count > 0 { try destination.write(UnsafeRawBufferPointer(rebasing: output[..<count])) }
    }
}

extension Compression {
    /// A sink compressing into `destination` in this format, at its tool's
    /// default level (zstd 3, gzip 6, bzip2 9, xz preset 6); `nil` for ``none``.
    ///
    /// - Throws: ``OutputError/compression(_:)`` for lzop, which cannot be written.
    public func compressor(into destination: any ByteSink) throws(OutputError) -> (any ByteSink)? {
        switch self {
        case .none: return nil
        case .zstd: return try ZstdCompressingSink(destination)
        case .gzip: return CompressingSink(try GzipEncoder(), into: destination)
        case .bzip2: return CompressingSink(try Bzip2Encoder(), into: destination)
        case .xz: return CompressingSink(try XzEncoder(), into: destination)
        case .lzop: throw .compression("lzop cannot be written (no maintained library writes its format)")
        }
    }
}

// The encoders' initializers throw after their stream is allocated: deinit
// then runs and frees it (ending a stream the library never set up is safe).

/// gzip through zlib's `deflate` at level 6 (`gzip`'s default).
final class GzipEncoder: StreamEncoder {
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)

    init() throws(OutputError) {
        stream.initialize(to: z_stream())
        let result = deflateInit2_(stream, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard result == Z_OK else {
            throw .compression("zlib: deflateInit2 failed (\(result))")
        }
    }

    deinit {
        deflateEnd(stream)
        stream.deallocate()
    }

    func encode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, finishing: Bool)
        throws(OutputError) -> (consumed: Int, produced: Int, finished: Bool)
    {
        let (consumed, produced, result) = stream.step(input, output) { deflate($0, finishing ? Z_FINISH : Z_NO_FLUSH) }
        guard result == Z_OK || result == Z_STREAM_END || result == Z_BUF_ERROR else {
            throw .compression("zlib: deflate failed (\(result))")
        }
        return (consumed, produced, result == Z_STREAM_END)
    }
}

/// bzip2 through libbz2 with 900 KB blocks (`bzip2`'s default, `-9`).
final class Bzip2Encoder: StreamEncoder {
    private let stream = UnsafeMutablePointer<bz_stream>.allocate(capacity: 1)

    init() throws(OutputError) {
        stream.initialize(to: bz_stream())
        let result = BZ2_bzCompressInit(stream, 9, 0, 30)
        guard result == BZ_OK else {
            throw .compression("libbz2: BZ2_bzCompressInit failed (\(result))")
        }
    }

    deinit {
        BZ2_bzCompressEnd(stream)
        stream.deallocate()
    }

    func encode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, finishing: Bool)
        throws(OutputError) -> (consumed: Int, produced: Int, finished: Bool)
    {
        let (consumed, produced, result) = stream.step(input, output) { BZ2_bzCompress($0, finishing ? BZ_FINISH : BZ_RUN) }
        guard result == BZ_RUN_OK || result == BZ_FINISH_OK || result == BZ_STREAM_END else {
            throw .compression("libbz2: BZ2_bzCompress failed (\(result))")
        }
        return (consumed, produced, result == BZ_STREAM_END)
    }
}

/// xz through liblzma's easy encoder at preset 6 with a CRC-64 check (`xz`'s defaults).
final class XzEncoder: StreamEncoder {
    private let stream = UnsafeMutablePointer<lzma_stream>.allocate(capacity: 1)

    init() throws(OutputError) {
        stream.initialize(to: lzma_stream())
        let result = lzma_easy_encoder(stream, 6, LZMA_CHECK_CRC64)
        guard result == LZMA_OK else {
            throw .compression("liblzma: lzma_easy_encoder failed (\(result.rawValue))")
        }
    }

    deinit {
        lzma_end(stream)
        stream.deallocate()
    }

    func encode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, finishing: Bool)
        throws(OutputError) -> (consumed: Int, produced: Int, finished: Bool)
    {
        let (consumed, produced, result) = stream.step(input, output, finishing ? LZMA_FINISH : LZMA_RUN)
        guard result == LZMA_OK || result == LZMA_STREAM_END || result == LZMA_BUF_ERROR else {
            throw .compression("liblzma: lzma_code failed (\(result.rawValue))")
        }
        return (consumed, produced, result == LZMA_STREAM_END)
    }
}
