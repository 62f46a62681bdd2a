/// One streaming decoder of a maintained library (libzstd, zlib, libbz2, liblzma), driven
/// by ``DecompressingSource``: it knows its library's calls, the source knows
/// the buffering, the offsets and the frames.
protocol StreamDecoder: AnyObject {
    /// The format it decodes.
    static var format: Compression { get }

    /// Decodes from `input` into `output`; `inputEnded` when no more input will
    /// come (liblzma wants to be told).
    ///
    /// - Returns: Bytes consumed and produced, whether the frame ended, and
    ///   what the library reported if it failed (the bytes produced before the
    ///   failure are good).
    func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, inputEnded: Bool) -> DecodeStep

    /// Makes the decoder ready for a frame that follows the one that ended.
    func reset()
}

/// What one call of a ``StreamDecoder`` did.
struct DecodeStep {
    var consumed: Int
    var produced: Int
    var frameEnded = false
    var failure: CompressionFailure.Reason?
}

/// Decompresses zstd, gzip, bzip2 or xz input through its library's streaming decoder.
///
/// Frames (zstd frames, gzip members, bzip2 and xz streams) may follow each other, as their
/// own tools allow; bytes after a frame that do not begin another are a
/// ``CompressionFailure/Reason/notAFrame`` failure. Memory is the decoder's own
/// (at most 128 MiB for zstd's window and xz, far less for their defaults) and one input buffer,
/// never the size of the input.
final class DecompressingSource<Decoder: StreamDecoder>: DecompressingByteSource {
    private let decoder: Decoder
    private let compressed: any ByteSource
    private let input: UnsafeMutableRawBufferPointer
    private var inputStart = 0
    private var inputEnd = 0
    private var compressedExhausted = false
    /// Stored-input offset of `input[0]`.
    private var inputBufferOffset: UInt64
    /// Stored-input offset where the current (or next) frame starts.
    private var frameOffset: UInt64
    /// Whether the decoder holds part of a frame it has not finished.
    private var insideFrame = false
    /// Whether a frame has ended, so that what follows must begin another.
    private var afterFrame = false
    /// The first bytes of the current frame, as far as consumed: whether bytes
    /// after a frame begin another is told by the format's magic.
    private var leading: [UInt8] = []
    /// A failure found in a call that also produced output: that output is
    /// returned first, the failure on the next call.
    private var deferredFailure: CompressionFailure?

    var compressedBytesRead: UInt64 { inputBufferOffset + UInt64(inputStart) }

    init(_ decoder: Decoder, compressed: any ByteSource, startingAt offset: UInt64 = 0, inputBufferSize: Int = 256 * 1024) {
        self.decoder = decoder
        self.compressed = compressed
        input = .allocate(byteCount: inputBufferSize, alignment: 16)
        inputBufferOffset = offset
        frameOffset = offset
    }

    deinit { input.deallocate() }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(InputError) -> Int {
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
            if pending > 0 && !insideFrame {
                if afterFrame { decoder.reset() }
                insideFrame = true
            }
            let step = decoder.decode(
                UnsafeRawBufferPointer(rebasing: input[inputStart..<inputEnd]), into: buffer, inputEnded: compressedExhausted)
            if leading.count < Compression.magicLength {
                leading += input[inputStart..<inputStart + min(step.consumed, Compression.magicLength - leading.count)]
            }
            inputStart += step.consumed
            if let reason = step.failure {
                let failure = CompressionFailure(
                    format: Decoder.format, frameOffset: frameOffset, reason: followsWithoutFrame ? .notAFrame : reason)
                guard step.produced > 0 else { throw .compression(failure) }
                deferredFailure = failure
                return step.produced
            }
            if step.frameEnded {
                insideFrame = false
                afterFrame = true
                frameOffset = compressedBytesRead
                leading = []
            }
            if step.produced > 0 { return step.produced }
            if compressedExhausted && step.consumed == 0 && insideFrame && !step.frameEnded {
                throw .compression(CompressionFailure(
                    format: Decoder.format, frameOffset: frameOffset,
                    reason: followsWithoutFrame ? .notAFrame : .truncatedFrame(inputLength: compressedBytesRead)))
            }
        }
    }

    /// Whether the bytes after a complete frame do not begin another (by the format's magic).
    private var followsWithoutFrame: Bool {
        afterFrame && Compression.detect(leadingBytes: leading) != Decoder.format
    }
}
