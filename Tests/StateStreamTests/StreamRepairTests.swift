import StateStream
import TestSupport
import Testing

@Suite struct StreamRepairTests {
    let first: [UInt8] = Array("first".utf8)
    let second: [UInt8] = Array("second!".utf8)

    private func repair(_ stream: [UInt8], keepPartial: Bool = false) throws -> (bytes: [UInt8], report: StreamRepair.Report) {
        let sink = ByteArraySink()
        let report = try StreamRepair.repair(TestStreams.input(stream), to: sink, keepPartial: keepPartial)
        let check = try StreamAnalysis.analyze(TestStreams.input(sink.bytes), computeDigest: false)
        #expect(check.isValid(strict: true), "repaired output must validate")
        #expect(UInt64(sink.bytes.count) == report.outputFramedBytes)
        return (sink.bytes, report)
    }

    @Test func missingTerminatorIsAdded() throws {
        let (bytes, report) = try repair(StreamBytes.frame([first, second], terminator: false))
        #expect(bytes == StreamBytes.frame([first, second]))
        #expect(report.changes == [.addedTerminator(outputOffset: 20)])
    }

    @Test func emptyInputBecomesTheTerminator() throws {
        let (bytes, report) = try repair([])
        #expect(bytes == [0, 0, 0, 0])
        #expect(report.changes == [.addedTerminator(outputOffset: 0)])
    }

    @Test func partialLengthIsDropped() throws {
        let (bytes, report) = try repair(StreamBytes.frame([first], terminator: false) + [0, 0, 1])
        #expect(bytes == StreamBytes.frame([first]))
        #expect(report.changes == [.droppedPartialLength(at: 9, presentBytes: 3), .addedTerminator(outputOffset: 9)])
        #expect(report.changes[0].droppedBytes == 3)
    }

    @Test func truncatedChunkIsDroppedOrKept() throws {
        let stream = Array(StreamBytes.frame([first, second], terminator: false).dropLast(3))
        let chunk = Chunk(index: 1, offset: 9, length: 7)
        let dropped = try repair(stream)
        #expect(dropped.bytes == StreamBytes.frame([first]))
        #expect(dropped.report.changes == [.droppedPartialChunk(chunk, presentBytes: 4), .addedTerminator(outputOffset: 9)])
        #expect(dropped.report.changes[0].droppedBytes == 8)
        let kept = try repair(stream, keepPartial: true)
        #expect(kept.bytes == StreamBytes.frame([first, Array(second.prefix(4))]))
        #expect(kept.report.changes == [.keptPartialChunk(chunk, presentBytes: 4), .addedTerminator(outputOffset: 17)])
        #expect(kept.report.outputPayloadBytes == 9)
    }

    @Test func truncatedChunkWithNothingPresentIsDroppedEvenWhenKeeping() throws {
        let stream = StreamBytes.frame([first], terminator: false) + StreamBytes.bigEndian(50)
        let (bytes, report) = try repair(stream, keepPartial: true)
        #expect(bytes == StreamBytes.frame([first]))
        #expect(report.changes.first == .droppedPartialChunk(Chunk(index: 1, offset: 9, length: 50), presentBytes: 0))
    }

    @Test func trailingDataIsDropped() throws {
        let (bytes, report) = try repair(StreamBytes.frame([first]) + StreamBytes.frame([second]))
        #expect(bytes == StreamBytes.frame([first]))
        #expect(report.changes == [.droppedTrailingData(at: 13, byteCount: 15)])
    }

    @Test func brokenZstdEndsWhereDecodingStopped() throws {
        var generator = SeededGenerator(seed: 11)
        let chunks = (0..<30).map { _ in TestStreams.bytes(65_536, using: &generator) }
        var compressed = TestStreams.zstd(StreamBytes.frame(chunks), level: 1)
        compressed.removeLast(100)
        let (bytes, report) = try repair(compressed)
        #expect(report.changes.count == 2)
        guard case .stoppedAtCompressionError(let failure) = report.changes[0] else {
            Issue.record("expected a compression error first, got \(report.changes)")
            return
        }
        #expect(failure.reason == .truncatedFrame(inputLength: UInt64(compressed.count)))
        #expect(report.outputChunks > 0 && report.outputChunks < 30)
        #expect(bytes == StreamBytes.frame(Array(chunks.prefix(report.outputChunks))))
    }

    @Test func truncatedChunkLongerThanTheBufferNeedsARewindableOutput() throws {
        // 2 MiB declared, 1.5 MiB present: written as read, then cut back.
        let body = [UInt8](repeating: 5, count: 3 << 19)
        let stream = StreamBytes.frame([first], terminator: false) + StreamBytes.bigEndian(2 << 20) + body
        #expect(throws: OutputError.cannotRewind) {
            _ = try StreamRepair.repair(TestStreams.input(stream), to: ByteArraySink(), keepPartial: false)
        }
    }
}
