import StateStream
import TestSupport
import Testing

@Suite struct StateStreamWriterTests {
    @Test func writerWritesLengthFieldsBodiesAndTerminator() throws {
        let sink = ByteArraySink()
        var writer = StateStreamWriter(sink: sink)
        try [UInt8]([1, 2, 3]).withUnsafeBytes { try writer.writeChunk($0) }
        try writer.writeChunkHeader(length: 0x0102_0304)
        try [UInt8]([9]).withUnsafeBytes { try writer.writeChunkBody($0) }
        try writer.finish()
        #expect(sink.bytes == [0, 0, 0, 3, 1, 2, 3, 1, 2, 3, 4, 9, 0, 0, 0, 0])
        #expect(writer.chunkCount == 2)
        #expect(writer.payloadBytes == 4)
        #expect(writer.framedBytes == 16)
        #expect(sink.finishCount == 1)
    }

    @Test(arguments: 1...25)
    func framerCutsPayloadIntoFixedChunksWhateverTheAppends(seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed)
        let payload = TestStreams.bytes(Int.random(in: 0...3000, using: &generator), using: &generator)
        let chunkSize = [1, 2, 7, 64, 1000, 5000][Int(seed) % 6]
        let sink = ByteArraySink()
        var framer = PayloadFramer(chunkSize: chunkSize, sink: sink)
        for piece in TestStreams.randomSplit(payload, using: &generator, maximum: 1500) {
            try framer.append(piece[...])
        }
        try framer.finish()
        #expect(sink.bytes == StreamBytes.frame(TestStreams.split(payload, size: chunkSize)))
        #expect(framer.payloadBytes == UInt64(payload.count))
    }

    @Test func emptyPayloadFramesToTheTerminatorAlone() throws {
        let sink = ByteArraySink()
        let result = try StreamTransforms.frame(payload: ByteArraySource([]), chunkSize: 16, to: sink)
        #expect(sink.bytes == [0, 0, 0, 0])
        #expect(result == .init(chunks: 0, payloadBytes: 0, framedBytes: 4))
    }
}
