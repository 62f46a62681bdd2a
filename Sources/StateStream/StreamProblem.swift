/// Something wrong with a state stream, located by a byte offset.
///
/// Offsets count bytes of the framed stream (after decompression), except for
/// ``compressionError(_:)``, whose offset is in the compressed input.
public enum StreamProblem: Finding, Hashable {
    /// The input ends where a length field was due, so there is no terminator.
    /// QEMU's loader reads end of file here as a zero length: the stream looks
    /// complete to it and fails only later.
    case missingTerminator(at: UInt64)
    /// The input ends inside a 4-byte length field.
    case truncatedLength(at: UInt64, presentBytes: Int)
    /// The input ends inside a chunk body.
    case truncatedChunk(Chunk, presentBytes: UInt64)
    /// Bytes follow the terminator.
    case trailingData(at: UInt64, byteCount: UInt64)
    /// A chunk is longer than the limit (QEMU never writes one above 1 MiB, but
    /// its loader accepts it). A warning.
    case oversizedChunk(Chunk, limit: UInt32)
    /// The zstd layer around the stream is broken.
    case compressionError(CompressionFailure)

    /// The stable name of each kind of problem, used in messages and JSON.
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// A ``StreamProblem/missingTerminator(at:)``.
        case missingTerminator = "missing-terminator"
        /// A ``StreamProblem/truncatedLength(at:presentBytes:)``.
        case truncatedLength = "truncated-length"
        /// A ``StreamProblem/truncatedChunk(_:presentBytes:)``.
        case truncatedChunk = "truncated-chunk"
        /// A ``StreamProblem/trailingData(at:byteCount:)``.
        case trailingData = "trailing-data"
        /// An ``StreamProblem/oversizedChunk(_:limit:)``.
        case oversizedChunk = "oversized-chunk"
        /// A ``StreamProblem/compressionError(_:)``.
        case compressionError = "compression-error"
    }

    /// How bad a problem is: every finding's ``StateStream/Severity``.
    public typealias Severity = StateStream.Severity

    /// Which kind of problem this is.
    public var kind: Kind {
        switch self {
        case .missingTerminator: return .missingTerminator
        case .truncatedLength: return .truncatedLength
        case .truncatedChunk: return .truncatedChunk
        case .trailingData: return .trailingData
        case .oversizedChunk: return .oversizedChunk
        case .compressionError: return .compressionError
        }
    }

    /// ``Severity/warning`` for an oversized chunk, which QEMU loads;
    /// ``Severity/error`` for every other problem.
    public var severity: Severity {
        if case .oversizedChunk = self { return .warning }
        return .error
    }

    /// Where the problem is: in the framed stream, or for `compression-error`
    /// in the compressed input.
    public var offset: UInt64 {
        switch self {
        case .missingTerminator(let offset), .truncatedLength(let offset, _), .trailingData(let offset, _):
            return offset
        case .truncatedChunk(let chunk, _), .oversizedChunk(let chunk, _):
            return chunk.offset
        case .compressionError(let failure):
            return failure.frameOffset
        }
    }

    /// The framed stream, or for `compression-error` the compressed input.
    public var offsetBase: OffsetBase { kind == .compressionError ? .compressedInput : .input }

    /// Whether ``offset`` counts bytes of the compressed input.
    public var offsetIsCompressed: Bool { offsetBase == .compressedInput }

    /// What is wrong and what was expected, in one sentence without the offset.
    public var message: String {
        switch self {
        case .missingTerminator:
            return "input ends where a chunk length or the zero-length terminator was due"
        case .truncatedLength(_, let present):
            return "input ends inside a 4-byte chunk length: \(present) of 4 bytes present"
        case .truncatedChunk(let chunk, let present):
            return "input ends inside chunk \(chunk.index): \(chunk.length) bytes declared, \(present) present, \(UInt64(chunk.length) - present) missing"
        case .trailingData(_, let count):
            return "\(count) \(count == 1 ? "byte follows" : "bytes follow") the terminator"
        case .oversizedChunk(let chunk, let limit):
            return "chunk \(chunk.index) declares \(chunk.length) bytes, above the \(limit)-byte limit"
        case .compressionError(let failure):
            return failure.description
        }
    }
}
