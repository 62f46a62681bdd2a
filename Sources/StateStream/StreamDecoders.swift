import CBzip2
import CLzma
import CZlib

/// gzip through zlib's `inflate` (window bits 15 + 16: the gzip wrapper, its
/// CRC-32 and length checked).
final class GzipDecoder: StreamDecoder {
    static let format = Compression.gzip
    /// zlib keeps a pointer back to its stream: it must not move.
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)

    init() {
        stream.initialize(to: z_stream())
        guard inflateInit2_(stream, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            fatalError("zlib could not allocate a decompression stream")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
    }

    func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, inputEnded: Bool) -> DecodeStep {
        let (consumed, produced, result) = stream.step(input, output) { inflate($0, Z_NO_FLUSH) }
        var step = DecodeStep(consumed: consumed, produced: produced)
        switch result {
        case Z_OK, Z_BUF_ERROR: break
        case Z_STREAM_END: step.frameEnded = true
        case Z_DATA_ERROR:
            let message = stream.pointee.msg.map { String(cString: $0) } ?? "invalid data"
            step.failure = message == "incorrect data check" || message == "incorrect length check" ? .checksumMismatch : .corrupt(message)
        case Z_MEM_ERROR: step.failure = .windowTooLarge
        default: step.failure = .corrupt("zlib error \(result)")
        }
        return step
    }

    func reset() { inflateReset(stream) }
}

/// bzip2 through libbz2's `BZ2_bzDecompress` (each block's CRC and the stream's checked).
final class Bzip2Decoder: StreamDecoder {
    static let format = Compression.bzip2
    /// libbz2 keeps a pointer back to its stream: it must not move.
    private let stream = UnsafeMutablePointer<bz_stream>.allocate(capacity: 1)

    init() {
        stream.initialize(to: bz_stream())
        start()
    }

    private func start() {
        guard BZ2_bzDecompressInit(stream, 0, 0) == BZ_OK else {
            fatalError("libbz2 could not allocate a decompression stream")
        }
    }

    deinit {
        BZ2_bzDecompressEnd(stream)
        stream.deallocate()
    }

    func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, inputEnded: Bool) -> DecodeStep {
        let (consumed, produced, result) = stream.step(input, output) { BZ2_bzDecompress($0) }
        var step = DecodeStep(consumed: consumed, produced: produced)
        switch result {
        case BZ_OK: break
        case BZ_STREAM_END: step.frameEnded = true
        case BZ_DATA_ERROR: step.failure = .checksumMismatch
        case BZ_DATA_ERROR_MAGIC: step.failure = .corrupt("not a bzip2 stream (BZ_DATA_ERROR_MAGIC)")
        case BZ_MEM_ERROR: step.failure = .windowTooLarge
        default: step.failure = .corrupt("libbz2 error \(result)")
        }
        return step
    }

    func reset() {
        BZ2_bzDecompressEnd(stream)
        stream.initialize(to: bz_stream())
        start()
    }
}

/// xz through liblzma's `lzma_stream_decoder` (each block's check and the
/// index checked), with a memory limit of 128 MiB.
final class XzDecoder: StreamDecoder {
    static let format = Compression.xz
    static let memoryLimit: UInt64 = 128 << 20
    private let stream = UnsafeMutablePointer<lzma_stream>.allocate(capacity: 1)

    init() {
        stream.initialize(to: lzma_stream())
        start()
    }

    private func start() {
        guard lzma_stream_decoder(stream, Self.memoryLimit, 0) == LZMA_OK else {
            fatalError("liblzma could not allocate a decoder")
        }
    }

    deinit {
        lzma_end(stream)
        stream.deallocate()
    }

    func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, inputEnded: Bool) -> DecodeStep {
        let (consumed, produced, result) = stream.step(input, output, inputEnded ? LZMA_FINISH : LZMA_RUN)
        var step = DecodeStep(consumed: consumed, produced: produced)
        switch result {
        case LZMA_OK: break
        case LZMA_STREAM_END: step.frameEnded = true
        case LZMA_BUF_ERROR: break  // no progress; at the end of the input the source reports the truncation
        case LZMA_DATA_ERROR: step.failure = .corrupt("compressed data is corrupt (LZMA_DATA_ERROR)")
        case LZMA_FORMAT_ERROR: step.failure = .corrupt("not an xz stream (LZMA_FORMAT_ERROR)")
        case LZMA_OPTIONS_ERROR: step.failure = .corrupt("unsupported options (LZMA_OPTIONS_ERROR)")
        case LZMA_MEMLIMIT_ERROR, LZMA_MEM_ERROR: step.failure = .windowTooLarge
        default: step.failure = .corrupt("liblzma error \(result.rawValue)")
        }
        return step
    }

    func reset() {
        lzma_end(stream)
        stream.initialize(to: lzma_stream())
        start()
    }
}
