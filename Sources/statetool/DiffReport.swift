import FoundationEssentials
import MigrationFile
import StateStream
import VirtiofsdState
import StatetoolKit

/// The hex view around a first difference: shared bytes, then each side's
/// bytes with `^^` under those that differ.
enum HexView {
    static let width = 16

    static func rows(_ comparison: PayloadComparison) -> [String] {
        var rows: [String] = []
        var offset = comparison.contextOffset
        for line in stride(from: 0, to: comparison.contextBefore.count, by: width) {
            let bytes = comparison.contextBefore[line..<min(line + width, comparison.contextBefore.count)]
            rows.append("  =" + TextFormat.padded(offset, to: 12) + "  " + hex(bytes))
            offset += UInt64(bytes.count)
        }
        let a = comparison.contextA, b = comparison.contextB
        for line in stride(from: 0, to: max(a.count, b.count), by: width) {
            let rowA = a.dropFirst(line).prefix(width), rowB = b.dropFirst(line).prefix(width)
            rows.append("  a" + TextFormat.padded(offset, to: 12) + "  " + hex(rowA))
            rows.append("  b" + TextFormat.padded(offset, to: 12) + "  " + hex(rowB))
            let marks = (0..<max(rowA.count, rowB.count)).map { index in
                index < rowA.count && index < rowB.count && rowA[rowA.startIndex + index] == rowB[rowB.startIndex + index] ? "  " : "^^"
            }
            var markRow = String(repeating: " ", count: 17) + marks.joined(separator: " ")
            while markRow.last == " " { markRow.removeLast() }
            rows.append(markRow)
            offset += UInt64(width)
        }
        return rows
    }

    static func hex(_ bytes: some Collection<UInt8>) -> String {
        bytes.hexString(separator: " ")
    }
}

/// `diff --json`.
enum DiffJSON {
    struct Side: Encodable {
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

    struct Location: Encodable {
        let chunk: Int
        let fileOffset: UInt64
    }

    struct FirstDifference: Encodable {
        let payloadOffset: UInt64
        let a: Nullable<Location>
        let b: Nullable<Location>
    }

    struct Range: Encodable {
        let start: UInt64
        let end: UInt64
        let length: UInt64
    }

    struct Context: Encodable {
        let offset: UInt64
        let before: String
        let a: String
        let b: String
    }

    struct PayloadReport: Encodable {
        let a: Side
        let b: Side
        let identical: Bool
        let firstDifference: Nullable<FirstDifference>
        let ranges: [Range]
        let omittedRanges: Int
        let differingBytes: UInt64
        let context: Nullable<Context>
    }

    struct ChunkSide: Encodable {
        let offset: UInt64
        let length: UInt32
    }

    struct FirstDifferingChunk: Encodable {
        let index: Int
        let a: Nullable<ChunkSide>
        let b: Nullable<ChunkSide>
    }

    struct FramingReport: Encodable {
        let a: Side
        let b: Side
        let identical: Bool
        let firstDifferingChunk: Nullable<FirstDifferingChunk>
        let differingChunks: Int
    }

    static func payload(_ comparison: PayloadComparison, a: String, b: String) throws -> String {
        let location = { (location: PayloadComparison.Location?) in
            location.map { Location(chunk: $0.chunkIndex, fileOffset: $0.fileOffset) }
        }
        let report = PayloadReport(
            a: Side(a, comparison.a), b: Side(b, comparison.b), identical: comparison.identical,
            firstDifference: Nullable(comparison.firstDifference.map {
                FirstDifference(
                    payloadOffset: $0, a: Nullable(location(comparison.firstDifferenceInA)),
                    b: Nullable(location(comparison.firstDifferenceInB)))
            }),
            ranges: comparison.ranges.map { Range(start: $0.lowerBound, end: $0.upperBound, length: $0.upperBound - $0.lowerBound) },
            omittedRanges: comparison.omittedRangeCount, differingBytes: comparison.differingBytes,
            context: Nullable(comparison.identical ? nil : Context(
                offset: comparison.contextOffset, before: HexView.hex(comparison.contextBefore),
                a: HexView.hex(comparison.contextA), b: HexView.hex(comparison.contextB))))
        return String(decoding: try JSONEncoder.statetool.encode(SchemaDocument(report, schema: "diff")), as: UTF8.self)
    }

    static func framing(_ comparison: FramingComparison, a: String, b: String) throws -> String {
        let side = { (chunk: Chunk?) in chunk.map { ChunkSide(offset: $0.offset, length: $0.length) } }
        let report = FramingReport(
            a: Side(a, comparison.a), b: Side(b, comparison.b), identical: comparison.identical,
            firstDifferingChunk: Nullable(comparison.firstDifferingChunk.map {
                FirstDifferingChunk(index: $0, a: Nullable(side(comparison.chunkInA)), b: Nullable(side(comparison.chunkInB)))
            }),
            differingChunks: comparison.differingChunkCount)
        return String(decoding: try JSONEncoder.statetool.encode(SchemaDocument(report, schema: "diff")), as: UTF8.self)
    }


    struct SemanticReport: Encodable {
        /// How each side was read, when it is a migration file.
        struct Readings: Encodable {
            let a: Nullable<MigrationReading>
            let b: Nullable<MigrationReading>
        }

        let a: String
        let b: String
        let identical: Bool
        let differences: [StateDifference]
        let readings: Readings
    }

    static func semantic(
        _ differences: [StateDifference], a: String, b: String, readings: (MigrationReading?, MigrationReading?)
    ) throws -> String {
        let report = SemanticReport(
            a: a, b: b, identical: differences.isEmpty, differences: differences,
            readings: .init(a: Nullable(readings.0), b: Nullable(readings.1)))
        return String(decoding: try JSONEncoder.statetool.encode(SchemaDocument(report, schema: "diff")), as: UTF8.self)
    }
}
