import CZstd

/// zstd through libzstd's streaming decoder (`ZSTD_decompressStream`),
/// driven by ``DecompressingSource`` like the other formats: several frames
/// one after another, skippable frames anywhere (libzstd passes over them).
/// Memory is the frame's window (at most 128 MiB, zstd's default limit; 8 MiB
/// or less for the levels `zstd` uses by default), never the input's size.
final class ZstdDecoder: StreamDecoder {
    static let format = Compression.zstd
    private let stream: OpaquePointer

    init() {
        guard let stream = ZSTD_createDStream() else {
            fatalError("libzstd could not allocate a decompression context")
        }
        self.stream = stream
    }

    deinit { ZSTD_freeDStream(stream) }

    func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, inputEnded: Bool) -> DecodeStep {
        var outBuffer = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        let result = ZSTD_decompressStream(stream, &outBuffer, &inBuffer)
        var step = DecodeStep(consumed: inBuffer.pos, produced: outBuffer.pos)
        if ZSTD_isError(result) != 0 {
            step.failure = Self.reason(for: result)
        } else if result == 0 {
            step.frameEnded = true
        }
        return step
    }

    func reset() {
        ZSTD_DCtx_reset(stream, ZSTD_reset_session_only)
    }

    private static func reason(for result: Int) -> CompressionFailure.Reason {
        switch ZSTD_getErrorCode(result) {
        case ZSTD_error_checksum_wrong: return .checksumMismatch
        case ZSTD_error_prefix_unknown: return .notAFrame
        case ZSTD_error_frameParameter_windowTooLarge: return .windowTooLarge
        default: return .corrupt(String(cString: ZSTD_getErrorName(result)))
        }
    }
}
