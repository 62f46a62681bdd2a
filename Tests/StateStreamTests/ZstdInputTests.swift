import StateStream
import TestSupport
import Testing

@Suite struct ZstdInputTests {
    let chunks: [[UInt8]] = [Array("alpha".utf8), Array(repeating: 0x41, count: 5000), Array("omega".utf8)]
    var stream: [UInt8] { StreamBytes.frame(chunks) }

    private func problems(_ bytes: [UInt8], readSizes: @escaping (Int) -> Int = { _ in .max }) throws -> [StreamProblem] {
        try TestStreams.events(of: bytes, readSizes: readSizes).compactMap {
            if case .problem(let problem) = $0 { return problem }
            return nil
        }
    }

    @Test func compressionIsDetectedFromContent() throws {
        #expect(try StateStreamInput(source: ByteArraySource(TestStreams.zstd(stream))).compression == .zstd)
        #expect(try StateStreamInput(source: ByteArraySource(stream)).compression == .none)
        #expect(try StateStreamInput(source: ByteArraySource([0x28, 0xB5, 0x2F])).compression == .none)
        for variant: UInt8 in [0, 7, 15] {
            #expect(Compression.detect(leadingBytes: TestStreams.skippableFrame([], variant: variant)) == .zstd)
        }
        #expect(Compression.detect(leadingBytes: [0x60, 0x2A, 0x4D, 0x18]) == .none)
    }

    /// Reading ahead takes the first framed bytes, decompressed, and leaves an
    /// input that reads from the start again: a read at a time, as from a pipe.
    @Test func readingAheadGivesTheFirstFramedBytesBack() throws {
        for bytes in [stream, TestStreams.zstd(stream)] {
            let (prefix, input) = try StateStreamInput(source: ByteArraySource(bytes, maximumReadSize: 3)).readingAhead(16)
            #expect(prefix == Array(stream.prefix(16)))
            #expect(input.compression == (bytes == stream ? .none : .zstd))
            #expect(try input.framedSource.readPrefix(stream.count + 1) == stream)
        }
        let (short, input) = try StateStreamInput(source: ByteArraySource([0, 0, 0])).readingAhead(16)
        #expect(short == [0, 0, 0])
        #expect(try input.framedSource.readPrefix(16) == [0, 0, 0])
    }

    @Test func severalFramesAreOneStream() throws {
        let split = stream.count / 3
        let input = TestStreams.zstd(Array(stream[..<split])) + TestStreams.zstd(Array(stream[split...]))
        #expect(try TestStreams.events(of: input, readSizes: { $0 % 4 + 1 }) == TestStreams.expectedEvents(chunks))
    }

    @Test func skippableFramesAreIgnoredAnywhere() throws {
        let split = stream.count / 2
        let input = TestStreams.skippableFrame(Array("provenance".utf8))
            + TestStreams.zstd(Array(stream[..<split]))
            + TestStreams.skippableFrame([1, 2, 3], variant: 5)
            + TestStreams.zstd(Array(stream[split...]))
            + TestStreams.skippableFrame([])
        #expect(try TestStreams.events(of: input) == TestStreams.expectedEvents(chunks))
    }

    @Test func framingProblemsInsideZstdKeepTheirFramedOffsets() throws {
        let cut = Array(stream.dropLast(6))
        let expected = try problems(cut)
        #expect(expected == [.truncatedChunk(Chunk(index: 2, offset: 5013, length: 5), presentBytes: 3)])
        #expect(try problems(TestStreams.zstd(cut)) == expected)
        let trailing = stream + [1, 2, 3]
        #expect(try problems(TestStreams.zstd(trailing)) == [.trailingData(at: UInt64(stream.count), byteCount: 3)])
    }

    @Test func truncatedFrameIsACompressionError() throws {
        let compressed = TestStreams.zstd(stream)
        let cut = Array(compressed.dropLast(5))
        let failure = CompressionFailure(frameOffset: 0, reason: .truncatedFrame(inputLength: UInt64(cut.count)))
        #expect(try problems(cut) == [.compressionError(failure)])
    }

    @Test func truncatedSecondFrameNamesItsOffset() throws {
        let first = TestStreams.zstd(Array(stream.prefix(100)))
        let second = TestStreams.zstd(Array(stream.dropFirst(100)))
        let input = first + second.dropLast(3)
        let failure = CompressionFailure(frameOffset: UInt64(first.count), reason: .truncatedFrame(inputLength: UInt64(input.count)))
        #expect(try problems(input, readSizes: { $0 % 3 + 1 }) == [.compressionError(failure)])
    }

    @Test func garbageAfterLastFrameIsACompressionError() throws {
        let compressed = TestStreams.zstd(stream)
        let input = compressed + Array("garbage!".utf8)
        let problems = try problems(input)
        #expect(problems == [.compressionError(CompressionFailure(frameOffset: UInt64(compressed.count), reason: .notAFrame))])
        #expect(problems[0].offset == UInt64(compressed.count))
        #expect(problems[0].offsetIsCompressed)
    }

    @Test func checksumMismatchIsACompressionError() throws {
        var compressed = TestStreams.zstd(stream)
        compressed[compressed.count - 1] ^= 0xFF
        #expect(try problems(compressed) == [.compressionError(CompressionFailure(frameOffset: 0, reason: .checksumMismatch))])
    }

    @Test func checksumMismatchInALargeFrameKeepsTheDecodedPrefix() throws {
        // Several blocks: output decoded before the failing checksum still reaches the reader.
        var generator = SeededGenerator(seed: 7)
        let big = (0..<40).map { _ in TestStreams.bytes(65_536, using: &generator) }
        var compressed = TestStreams.zstd(StreamBytes.frame(big), level: 1)
        compressed[compressed.count - 1] ^= 0xFF
        var reader = StateStreamReader(input: try StateStreamInput(source: ByteArraySource(compressed)))
        let events = try TestStreams.record(&reader)
        #expect(events.last == .problem(.compressionError(CompressionFailure(frameOffset: 0, reason: .checksumMismatch))))
        let completeChunks = events.filter { if case .chunkEnd = $0 { return true } else { return false } }
        #expect(completeChunks.count >= 30)
    }

    @Test func corruptBlockIsACompressionError() throws {
        var compressed = TestStreams.zstd(stream)
        for index in 12..<min(compressed.count - 4, 40) { compressed[index] ^= 0x5A }
        let problems = try problems(compressed)
        #expect(problems.count == 1)
        #expect(problems.first?.kind == .compressionError)
        #expect(problems.first?.offset == 0)
    }
}
