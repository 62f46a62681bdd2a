import StateStream

/// What `diff --json` prints for a comparison of payloads or of chunk layouts
/// (`--semantic` prints a ``SemanticComparison``).
public enum StreamComparisonReport {
    struct Side: Encodable, Sendable {
        let file: String
        let compression: Compression
        let chunks: Int
        let payloadBytes: UInt64

        init(_ file: String, _ analysis: StreamAnalysis) {
            self.file = file
            compression = analysis.compression
            chunks = analysis.chunkCount
            payloadBytes = analysis.payloadBytes
        }
    }

    struct Location: Encodable, Sendable {
        let chunk: Int
        let fileOffset: UInt64
    }

    struct FirstDifference: Encodable, Sendable {
        let payloadOffset: UInt64
        let a: Nullable<Location>
        let b: Nullable<Location>
    }

    struct Range: Encodable, Sendable {
        let start: UInt64
        let end: UInt64
        let length: UInt64
    }

    struct Context: Encodable, Sendable {
        let offset: UInt64
        let before: String
        let a: String
        let b: String
    }

    /// `diff --json` of two payloads.
    public struct Payload: Encodable, Sendable {
        let a: Side
        let b: Side
        let identical: Bool
        let firstDifference: Nullable<FirstDifference>
        let ranges: [Range]
        let omittedRanges: Int
        let differingBytes: UInt64
        let context: Nullable<Context>
    }

    struct ChunkSide: Encodable, Sendable {
        let offset: UInt64
        let length: UInt32
    }

    struct FirstDifferingChunk: Encodable, Sendable {
        let index: Int
        let a: Nullable<ChunkSide>
        let b: Nullable<ChunkSide>
    }

    /// `diff --json --framing`.
    public struct Framing: Encodable, Sendable {
        let a: Side
        let b: Side
        let identical: Bool
        let firstDifferingChunk: Nullable<FirstDifferingChunk>
        let differingChunks: Int
    }
}

extension StreamComparisonReport.Payload {
    /// The report of `comparison`, of the streams named `a` and `b`.
    public init(_ comparison: PayloadComparison, a: String, b: String) {
        let location = { (location: PayloadComparison.Location?) in
            location.map { StreamComparisonReport.Location(chunk: $0.chunkIndex, fileOffset: $0.fileOffset) }
        }
        self.init(
            a: .init(a, comparison.a), b: .init(b, comparison.b), identical: comparison.identical,
            firstDifference: Nullable(comparison.firstDifference.map {
                StreamComparisonReport.FirstDifference(
                    payloadOffset: $0, a: Nullable(location(comparison.firstDifferenceInA)),
                    b: Nullable(location(comparison.firstDifferenceInB)))
            }),
            ranges: comparison.ranges.map { .init(start: $0.lowerBound, end: $0.upperBound, length: $0.upperBound - $0.lowerBound) },
            omittedRanges: comparison.omittedRangeCount, differingBytes: comparison.differingBytes,
            context: Nullable(comparison.identical ? nil : StreamComparisonReport.Context(
                offset: comparison.contextOffset, before: comparison.contextBefore.hexString(separator: " "),
                a: comparison.contextA.hexString(separator: " "), b: comparison.contextB.hexString(separator: " "))))
    }
}

extension StreamComparisonReport.Framing {
    /// The report of `comparison`, of the streams named `a` and `b`.
    public init(_ comparison: FramingComparison, a: String, b: String) {
        let side = { (chunk: Chunk?) in chunk.map { StreamComparisonReport.ChunkSide(offset: $0.offset, length: $0.length) } }
        self.init(
            a: .init(a, comparison.a), b: .init(b, comparison.b), identical: comparison.identical,
            firstDifferingChunk: Nullable(comparison.firstDifferingChunk.map {
                StreamComparisonReport.FirstDifferingChunk(index: $0, a: Nullable(side(comparison.chunkInA)), b: Nullable(side(comparison.chunkInB)))
            }),
            differingChunks: comparison.differingChunkCount)
    }
}
