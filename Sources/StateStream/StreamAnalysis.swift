import Crypto

/// Everything `validate` and `inspect` report about one state stream.
public struct StreamAnalysis: Sendable {
    /// How the input was stored.
    public var compression: Compression
    /// Compressed bytes read, for zstd input.
    public var compressedBytes: UInt64?
    /// Bytes of the framed (decompressed) stream read, trailing data included.
    public var framedBytes: UInt64 = 0
    /// Complete data chunks (a truncated last chunk does not count).
    public var chunkCount: Int { chunkSizes.count }
    /// Payload bytes in complete chunks.
    public var payloadBytes: UInt64 = 0
    /// Lengths of the complete chunks.
    public var chunkSizes = ChunkSizeStatistics()
    /// Offset of the zero-length terminator, if the stream has one.
    public var terminatorOffset: UInt64?
    /// SHA-256 of the complete chunks' payload, as lowercase hex, when asked for.
    public var payloadSHA256: String?
    /// Problems in the order found, at most ``problemLimit``; an error is always last.
    public var problems: [StreamProblem] = []
    /// Problems found beyond ``problemLimit`` (warnings only), not kept.
    public var omittedProblemCount = 0
    /// Length of the valid prefix: everything up to the end of the last complete
    /// chunk, or of the terminator.
    public var validPrefixLength: UInt64 = 0

    /// How many problems are kept; a hostile stream can have one per chunk.
    public static let problemLimit = 1000

    /// The first error, if any.
    public var error: StreamProblem? { problems.last.flatMap { $0.severity == .error ? $0 : nil } }

    /// Framing bytes beyond the payload: the length fields and the terminator
    /// of the valid prefix.
    public var framingOverhead: UInt64 { validPrefixLength - payloadBytes }

    /// Whether the stream is valid: no errors, and with `strict` no warnings.
    public func isValid(strict: Bool = false) -> Bool {
        strict ? problems.isEmpty && omittedProblemCount == 0 : error == nil
    }

    /// Reads `input` to its end and analyses it.
    ///
    /// - Parameters:
    ///   - input: The stream to read.
    ///   - maximumChunkLength: Longer chunks draw an `oversized-chunk` warning.
    ///   - computeDigest: Whether to compute ``payloadSHA256``.
    ///   - copy: Where to copy every byte of the framed (decompressed) stream as
    ///     it is read, exactly, trailing data included: `compress` and
    ///     `decompress` check and copy in one pass.
    ///   - observe: Called with every event after it is recorded: to list chunks,
    ///     show progress, or copy the payload somewhere.
    /// - Throws: ``InputError`` if the input cannot be read (or, as
    ///   ``InputError/copyFailed(_:)``, the copy cannot be written), or whatever
    ///   `observe` throws.
    public static func analyze(
        _ input: StateStreamInput,
        maximumChunkLength: UInt32 = StateStreamFormat.qemuMaximumChunkLength,
        computeDigest: Bool,
        copyingFramedBytesTo copy: (any ByteSink)? = nil,
        observe: (borrowing StateStreamReader, StreamEvent) throws -> Void = { _, _ in }
    ) throws -> StreamAnalysis {
        let source = copy.map { TeeSource(input.framedSource, copyingTo: $0) } ?? input.framedSource
        var reader = StateStreamReader(source: source, maximumChunkLength: maximumChunkLength)
        var analyzer = StreamAnalyzer(compression: input.compression, computeDigest: computeDigest)
        while let event = try reader.next() {
            analyzer.record(event)
            try observe(reader, event)
        }
        return analyzer.finish(framedBytes: reader.framedBytesRead, compressedBytes: input.compressedBytesRead)
    }
}

/// Builds a ``StreamAnalysis`` from reader events.
public struct StreamAnalyzer {
    private var analysis: StreamAnalysis
    private var digest: SHA256?
    /// The digest as it was before the current chunk, restored if that chunk
    /// turns out truncated: the digest covers complete chunks only.
    private var digestBeforeChunk: SHA256?

    /// Starts an analysis of a stream stored with `compression`.
    public init(compression: Compression, computeDigest: Bool) {
        analysis = StreamAnalysis(compression: compression)
        digest = computeDigest ? SHA256() : nil
    }

    /// Takes the next event of the stream.
    public mutating func record(_ event: StreamEvent) {
        switch event {
        case .chunkStart:
            digestBeforeChunk = digest
        case .payload(let bytes):
            if digest != nil {
                bytes.withUnsafeBytes { digest!.update(bufferPointer: $0) }
            }
        case .chunkEnd(let chunk):
            analysis.chunkSizes.record(chunk.length)
            analysis.payloadBytes += UInt64(chunk.length)
            analysis.validPrefixLength = chunk.endOffset
        case .terminator(let offset):
            analysis.terminatorOffset = offset
            analysis.validPrefixLength = offset + UInt64(StateStreamFormat.lengthFieldSize)
        case .problem(let problem):
            if case .truncatedChunk = problem { digest = digestBeforeChunk }
            if analysis.problems.count < StreamAnalysis.problemLimit || problem.severity == .error {
                analysis.problems.append(problem)
            } else {
                analysis.omittedProblemCount += 1
            }
        }
    }

    /// The analysis of everything recorded, with the byte counts the reader
    /// (``StateStreamReader/framedBytesRead``) and the input
    /// (``StateStreamInput/compressedBytesRead``) give at the end.
    public func finish(framedBytes: UInt64, compressedBytes: UInt64?) -> StreamAnalysis {
        var result = analysis
        result.framedBytes = framedBytes
        result.compressedBytes = compressedBytes
        result.payloadSHA256 = digest.map { $0.finalize().hexString }
        return result
    }
}
