import StateStream
import TestSupport
import Testing

/// Byte-for-byte round trips over random payloads and chunkings.
@Suite struct StreamTransformsTests {
    static let seeds: [UInt64] = Array(1...20)

    private func randomStream(seed: UInt64) -> (payload: [UInt8], stream: [UInt8]) {
        var generator = SeededGenerator(seed: seed)
        let payload = TestStreams.bytes(Int.random(in: 0...5000, using: &generator), using: &generator)
        return (payload, StreamBytes.frame(TestStreams.randomSplit(payload, using: &generator)))
    }

    @Test(arguments: seeds)
    func frameThenPayloadReturnsTheInput(seed: UInt64) throws {
        let (payload, _) = randomStream(seed: seed)
        let framed = ByteArraySink()
        _ = try StreamTransforms.frame(payload: ByteArraySource(payload, maximumReadSize: 333), chunkSize: Int(seed % 5) * 400 + 1, to: framed)
        let extracted = ByteArraySink()
        let analysis = try StreamTransforms.extractPayload(of: TestStreams.input(framed.bytes), to: extracted)
        #expect(analysis.isValid(strict: true))
        #expect(extracted.bytes == payload)
    }

    @Test(arguments: seeds)
    func rechunkKeepsThePayload(seed: UInt64) throws {
        let (payload, stream) = randomStream(seed: seed)
        let size = [1, 3, 100, 4096, 1 << 20][Int(seed) % 5]
        let sink = ByteArraySink()
        let analysis = try StreamTransforms.rechunk(TestStreams.input(stream), chunkSize: size, to: sink)
        #expect(analysis.isValid())
        #expect(sink.bytes == StreamBytes.frame(TestStreams.split(payload, size: size)))
    }

    @Test(arguments: seeds)
    func compressThenDecompressReturnsTheExactInput(seed: UInt64) throws {
        let (_, stream) = randomStream(seed: seed)
        let compressed = ByteArraySink()
        let zstd = try ZstdCompressingSink(compressed, level: Int32(seed % 7) + 1, threads: seed % 2 == 0 ? 2 : 0)
        _ = try StreamAnalysis.analyze(TestStreams.input(stream), computeDigest: false, copyingFramedBytesTo: zstd)
        try zstd.finish()
        #expect(Compression.detect(leadingBytes: compressed.bytes) == .zstd)
        let decompressed = ByteArraySink()
        let analysis = try StreamAnalysis.analyze(TestStreams.input(compressed.bytes), computeDigest: false, copyingFramedBytesTo: decompressed)
        #expect(analysis.isValid())
        #expect(analysis.compression == .zstd)
        #expect(decompressed.bytes == stream)
    }

    @Test func copyKeepsTrailingDataExactly() throws {
        let stream = StreamBytes.frame([[1, 2, 3]]) + [7, 7]
        let copy = ByteArraySink()
        let analysis = try StreamAnalysis.analyze(TestStreams.input(stream), computeDigest: false, copyingFramedBytesTo: copy)
        #expect(analysis.error == .trailingData(at: 11, byteCount: 2))
        #expect(copy.bytes == stream)
    }

    @Test(arguments: seeds)
    func repairOfAValidStreamIsTheIdentity(seed: UInt64) throws {
        let (_, stream) = randomStream(seed: seed)
        let sink = ByteArraySink()
        let report = try StreamRepair.repair(TestStreams.input(stream), to: sink, keepPartial: seed % 2 == 0)
        #expect(report.changes.isEmpty)
        #expect(sink.bytes == stream)
        #expect(report.outputFramedBytes == UInt64(stream.count))
    }

    @Test func payloadOfATruncatedChunkIsNeverWritten() throws {
        let stream = Array(StreamBytes.frame([[1, 2, 3], [4, 5, 6, 7]], terminator: false).dropLast(1))
        let sink = ByteArraySink()
        let analysis = try StreamTransforms.extractPayload(of: TestStreams.input(stream), to: sink)
        #expect(sink.bytes == [1, 2, 3])
        #expect(analysis.payloadBytes == 3)
        #expect(analysis.error?.kind == .truncatedChunk)
    }
}
