import CZstd

/// Why a compressed layer could not be decoded, and where.
public struct CompressionFailure: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Reason: Hashable, Sendable {
        /// The input ended inside a frame (a gzip member, a bzip2 or xz stream).
        case truncatedFrame(inputLength: UInt64)
        /// The frame's checksum does not match its content.
        case checksumMismatch
        /// Bytes that do not begin a frame of the format, after a complete frame.
        case notAFrame
        /// The frame needs more memory than the decoder allows (128 MiB).
        case windowTooLarge
        /// Any other error of the library, with its name for it.
        case corrupt(String)
    }

    /// The format whose layer failed.
    public let format: Compression
    /// Offset in the compressed input of the frame that failed.
    public let frameOffset: UInt64
    /// What went wrong.
    public let reason: Reason

    public init(format: Compression = .zstd, frameOffset: UInt64, reason: Reason) {
        self.format = format
        self.frameOffset = frameOffset
        self.reason = reason
    }

    public var description: String {
        let unit = format.unitName
        switch reason {
        case .truncatedFrame(let inputLength):
            return "the \(unit) starting at compressed offset \(frameOffset) is truncated: the input ends at \(inputLength)"
        case .checksumMismatch:
            return "checksum mismatch in the \(unit) starting at compressed offset \(frameOffset)"
        case .notAFrame:
            return "data at compressed offset \(frameOffset) is not a \(unit) (trailing garbage after the last \(unit.split(separator: " ").last!))"
        case .windowTooLarge:
            return format == .zstd
                ? "the zstd frame starting at compressed offset \(frameOffset) needs a window above 128 MiB"
                : "the \(unit) starting at compressed offset \(frameOffset) needs more than 128 MiB to decode"
        case .corrupt(let name):
            return "corrupt \(unit) starting at compressed offset \(frameOffset): \(name)"
        }
    }
}

/// Decompresses a zstd input through libzstd's streaming decoder.
///
/// Handles several concatenated frames and skippable frames anywhere. Memory is
/// bounded by the input buffer and by the frame's window (at most 128 MiB, zstd's
/// default limit; 8 MiB or less for the levels `zstd` uses by default), never by the
/// size of the input.
public final class ZstdDecompressingSource: DecompressingByteSource {
    private let compressed: any ByteSource
    private let stream: OpaquePointer
    private let input: UnsafeMutableRawBufferPointer
    private var inputStart = 0
    private var inputEnd = 0
    private var compressedExhausted = false
    /// Compressed offset of `input[0]`.
    private var inputBufferOffset: UInt64 = 0
    /// Compressed offset where the current (or next) frame starts.
    private var frameOffset: UInt64 = 0
    /// Whether libzstd holds part of a frame it has not finished.
    private var insideFrame = false
    /// A failure found in a call that also produced output: that output is
    /// returned first, the failure on the next call.
    private var deferredFailure: CompressionFailure?

    /// The offset after the last compressed byte consumed (counted from `offset` given to init).
    public var compressedBytesRead: UInt64 { inputBufferOffset + UInt64(inputStart) }

    /// Decompresses `compressed`, whose first byte is at `offset` of the stored
    /// input, reading it `inputBufferSize` bytes at a time.
    public init(compressed: any ByteSource, startingAt offset: UInt64 = 0, inputBufferSize: Int = 256 * 1024) {
        guard let stream = ZSTD_createDStream() else {
            fatalError("libzstd could not allocate a decompression context")
        }
        self.stream = stream
        self.compressed = compressed
        self.input = .allocate(byteCount: inputBufferSize, alignment: 16)
        inputBufferOffset = offset
        frameOffset = offset
    }

    deinit {
        ZSTD_freeDStream(stream)
        input.deallocate()
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(InputError) -> Int {
        guard !buffer.isEmpty else { return 0 }
        if let failure = deferredFailure { throw .compression(failure) }
        while true {
            if inputStart == inputEnd && !compressedExhausted {
                inputBufferOffset += UInt64(inputEnd)
                inputStart = 0
                inputEnd = try compressed.read(into: input)
                compressedExhausted = inputEnd == 0
            }
            let pending = inputEnd - inputStart
            if pending == 0 && !insideFrame { return 0 }
            if pending > 0 { insideFrame = true }

            var outBuffer = ZSTD_outBuffer(dst: buffer.baseAddress, size: buffer.count, pos: 0)
            var inBuffer = ZSTD_inBuffer(src: input.baseAddress! + inputStart, size: pending, pos: 0)
            let result = ZSTD_decompressStream(stream, &outBuffer, &inBuffer)
            inputStart += inBuffer.pos
            if ZSTD_isError(result) != 0 {
                let failure = CompressionFailure(frameOffset: frameOffset, reason: Self.reason(for: result))
                guard outBuffer.pos > 0 else { throw .compression(failure) }
                deferredFailure = failure
                return outBuffer.pos
            }
            if result == 0 {
                insideFrame = false
                frameOffset = compressedBytesRead
            }
            if outBuffer.pos > 0 { return outBuffer.pos }
            if compressedExhausted && inBuffer.pos == 0 && inputStart == inputEnd && insideFrame {
                throw .compression(
                    CompressionFailure(frameOffset: frameOffset, reason: .truncatedFrame(inputLength: compressedBytesRead)))
            }
        }
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
