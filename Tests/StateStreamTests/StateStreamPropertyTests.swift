import StateStream
import TestSupport
import Testing

/// Random payloads, random chunkings, random read sizes and small buffers: every
/// split of a length field or a body across reads and buffer refills.
@Suite struct StateStreamPropertyTests {
    static let seeds: [UInt64] = Array(1...40)

    @Test(arguments: seeds)
    func randomValidStreamsReadBackExactly(seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed)
        let chunks = randomChunks(using: &generator)
        let stream = StreamBytes.frame(chunks)
        let bufferSize = Int.random(in: 4...64, using: &generator)
        var readGenerator = SeededGenerator(seed: seed ^ 0xABCD)
        let events = try TestStreams.events(
            of: stream, readSizes: { _ in Int.random(in: 1...50, using: &readGenerator) }, bufferSize: bufferSize)
        #expect(events == TestStreams.expectedEvents(chunks))
    }

    @Test(arguments: seeds.prefix(10))
    func everyTruncationIsNamedWithItsOffset(seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed)
        let chunks = randomChunks(using: &generator, maximumCount: 5, maximumLength: 12)
        let stream = StreamBytes.frame(chunks)
        for cut in 0..<stream.count {
            let events = try TestStreams.events(
                of: Array(stream.prefix(cut)), readSizes: { $0 % 3 + 1 }, bufferSize: Int.random(in: 4...9, using: &generator))
            #expect(events.last == .problem(expectedProblem(chunks: chunks, cut: cut)), "cut at \(cut)")
        }
    }

    @Test(arguments: seeds.prefix(10))
    func zstdInputReadsLikeRaw(seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed)
        let chunks = randomChunks(using: &generator)
        let stream = StreamBytes.frame(chunks)
        let compressed = TestStreams.zstd(stream)
        let events = try TestStreams.events(of: compressed, readSizes: { $0 % 5 + 1 }, bufferSize: 37)
        #expect(events == TestStreams.expectedEvents(chunks))
    }

    /// The oracle: what a cut at `cut` bytes into the terminated stream of `chunks` is.
    private func expectedProblem(chunks: [[UInt8]], cut: Int) -> StreamProblem {
        var offset = 0
        for (index, body) in chunks.enumerated() {
            if cut == offset { return .missingTerminator(at: UInt64(cut)) }
            if cut < offset + 4 { return .truncatedLength(at: UInt64(offset), presentBytes: cut - offset) }
            if cut < offset + 4 + body.count {
                let chunk = Chunk(index: index, offset: UInt64(offset), length: UInt32(body.count))
                return .truncatedChunk(chunk, presentBytes: UInt64(cut - offset - 4))
            }
            offset += 4 + body.count
        }
        return cut == offset ? .missingTerminator(at: UInt64(cut)) : .truncatedLength(at: UInt64(offset), presentBytes: cut - offset)
    }

    private func randomChunks(
        using generator: inout SeededGenerator, maximumCount: Int = 30, maximumLength: Int = 300
    ) -> [[UInt8]] {
        let count = Int.random(in: 0...maximumCount, using: &generator)
        return (0..<count).map { _ in
            // Mostly small, sometimes 1 byte: the edges matter most.
            let length = Bool.random(using: &generator) ? 1 : Int.random(in: 1...maximumLength, using: &generator)
            return TestStreams.bytes(length, using: &generator)
        }
    }
}
