import StateStream
import TestSupport
import Testing

@Suite struct StateStreamReaderTests {
    let body0: [UInt8] = Array("first chunk".utf8)
    let body1: [UInt8] = Array("second".utf8)

    @Test func validStreamYieldsChunksThenTerminator() throws {
        let stream = StreamBytes.frame([body0, body1])
        #expect(try TestStreams.events(of: stream) == TestStreams.expectedEvents([body0, body1]))
    }

    @Test func terminatorAloneIsAnEmptyValidStream() throws {
        #expect(try TestStreams.events(of: [0, 0, 0, 0]) == [.terminator(0)])
    }

    // MARK: missing-terminator

    @Test func emptyInputIsMissingTerminatorAtZero() throws {
        #expect(try TestStreams.events(of: []) == [.problem(.missingTerminator(at: 0))])
    }

    @Test func endAtChunkBoundaryIsMissingTerminatorThere() throws {
        let stream = StreamBytes.frame([body0, body1], terminator: false)
        let events = try TestStreams.events(of: stream)
        let end: UInt64 = 4 + 11 + 4 + 6
        #expect(events.last == .problem(.missingTerminator(at: end)))
        #expect(events.dropLast() == TestStreams.expectedEvents([body0, body1]).dropLast())
    }

    // MARK: truncated-length

    @Test(arguments: 1...3)
    func endInsideLengthIsTruncatedLength(present: Int) throws {
        let stream = StreamBytes.frame([body0], terminator: false) + [0, 0, 0].prefix(present)
        let events = try TestStreams.events(of: stream)
        #expect(events.last == .problem(.truncatedLength(at: 15, presentBytes: present)))
    }

    @Test(arguments: 1...3)
    func endInsideTerminatorIsTruncatedLength(present: Int) throws {
        let stream = Array(StreamBytes.frame([body0]).dropLast(4 - present))
        #expect(try TestStreams.events(of: stream).last == .problem(.truncatedLength(at: 15, presentBytes: present)))
    }

    // MARK: truncated-chunk

    @Test func endInsideBodyIsTruncatedChunkWithCounts() throws {
        let stream = Array(StreamBytes.frame([body0, body1], terminator: false).dropLast(2))
        let events = try TestStreams.events(of: stream)
        let chunk = Chunk(index: 1, offset: 15, length: 6)
        #expect(events.suffix(2) == [.chunkStart(chunk), .problem(.truncatedChunk(chunk, presentBytes: 4))])
    }

    @Test func bodyLongerThanBufferComesInPiecesEvenWhenTruncated() throws {
        let stream = Array(StreamBytes.frame([body0, body1], terminator: false).dropLast(2))
        let events = try TestStreams.events(of: stream, readSizes: { _ in 3 }, bufferSize: 5)
        let chunk = Chunk(index: 1, offset: 15, length: 6)
        #expect(events.suffix(3) == [.chunkStart(chunk), .payload(Array(body1.prefix(4))), .problem(.truncatedChunk(chunk, presentBytes: 4))])
    }

    @Test func bodyThatFitsTheBufferComesWhole() throws {
        var generator = SeededGenerator(seed: 3)
        let chunks = (0..<20).map { _ in TestStreams.bytes(Int.random(in: 1...64, using: &generator), using: &generator) }
        let input = try StateStreamInput(source: ByteArraySource(StreamBytes.frame(chunks), maximumReadSize: 7))
        var reader = StateStreamReader(input: input, bufferSize: 64)
        var bodies: [[UInt8]] = []
        while let event = try reader.next() {
            if case .payload(let bytes) = event { bodies.append(Array(bytes)) }
        }
        #expect(bodies == chunks)
    }

    @Test func endRightAfterLengthIsTruncatedChunkWithNothingPresent() throws {
        let stream = StreamBytes.frame([body0], terminator: false) + StreamBytes.bigEndian(100)
        let chunk = Chunk(index: 1, offset: 15, length: 100)
        #expect(try TestStreams.events(of: stream).suffix(2) == [.chunkStart(chunk), .problem(.truncatedChunk(chunk, presentBytes: 0))])
    }

    @Test func hugeDeclaredChunkIsReportedWhenInputEnds() throws {
        // 4 GiB - 1 declared, 10 bytes present: reported at once, nothing sized by the length.
        let stream = StreamBytes.bigEndian(.max) + Array(repeating: 7, count: 10)
        let chunk = Chunk(index: 0, offset: 0, length: .max)
        let events = try TestStreams.events(of: stream, bufferSize: 64)
        #expect(events == [
            .chunkStart(chunk),
            .problem(.oversizedChunk(chunk, limit: StateStreamFormat.qemuMaximumChunkLength)),
            .payload(Array(repeating: 7, count: 10)),
            .problem(.truncatedChunk(chunk, presentBytes: 10)),
        ])
    }

    // MARK: trailing-data

    @Test func bytesAfterTerminatorAreTrailingData() throws {
        let stream = StreamBytes.frame([body0]) + Array("junk".utf8)
        let events = try TestStreams.events(of: stream)
        #expect(events.suffix(2) == [.terminator(15), .problem(.trailingData(at: 19, byteCount: 4))])
    }

    @Test func secondTerminatorIsTrailingData() throws {
        let stream = StreamBytes.frame([body0]) + [0, 0, 0, 0]
        #expect(try TestStreams.events(of: stream).last == .problem(.trailingData(at: 19, byteCount: 4)))
    }

    @Test func wholeValidChunkAfterTerminatorIsTrailingData() throws {
        let stream = StreamBytes.frame([body0]) + StreamBytes.frame([body1])
        #expect(try TestStreams.events(of: stream).last == .problem(.trailingData(at: 19, byteCount: 14)))
    }

    @Test func trailingDataLargerThanBufferIsCountedExactly() throws {
        let stream = StreamBytes.frame([body0]) + Array(repeating: 1, count: 1000)
        let events = try TestStreams.events(of: stream, readSizes: { $0 % 7 + 1 }, bufferSize: 16)
        #expect(events.last == .problem(.trailingData(at: 19, byteCount: 1000)))
    }

    // MARK: oversized-chunk

    @Test func chunkAboveLimitIsAWarningAndReadingGoesOn() throws {
        let stream = StreamBytes.frame([body0, body1])
        let events = try TestStreams.events(of: stream, maximumChunkLength: 8)
        let chunk = Chunk(index: 0, offset: 0, length: 11)
        #expect(events.prefix(2) == [.chunkStart(chunk), .problem(.oversizedChunk(chunk, limit: 8))])
        #expect(events.dropFirst(2).elementsEqual(TestStreams.expectedEvents([body0, body1]).dropFirst()))
        #expect(StreamProblem.oversizedChunk(chunk, limit: 8).severity == .warning)
    }

    @Test func chunkAtLimitIsFine() throws {
        let events = try TestStreams.events(of: StreamBytes.frame([body0]), maximumChunkLength: 11)
        #expect(events == TestStreams.expectedEvents([body0]))
    }

    @Test func qemuMaximumIsOneMebibyte() throws {
        let body = [UInt8](repeating: 0, count: 1 << 20)
        #expect(try TestStreams.events(of: StreamBytes.frame([body])) == TestStreams.expectedEvents([body]))
        let larger = body + [0]
        let events = try TestStreams.events(of: StreamBytes.frame([larger]))
        #expect(events[1] == .problem(.oversizedChunk(Chunk(index: 0, offset: 0, length: (1 << 20) + 1), limit: 1 << 20)))
    }

    // MARK: reading

    @Test func framedBytesReadCountsEverything() throws {
        let stream = StreamBytes.frame([body0]) + [9, 9]
        var reader = StateStreamReader(input: try StateStreamInput(source: ByteArraySource(stream)))
        _ = try TestStreams.record(&reader)
        #expect(reader.framedBytesRead == UInt64(stream.count))
    }

    @Test func readErrorsAreThrown() throws {
        final class FailingSource: ByteSource {
            func read(into buffer: UnsafeMutableRawBufferPointer) throws(InputError) -> Int {
                throw .readFailed(.ioError)
            }
        }
        #expect(throws: InputError.readFailed(.ioError)) {
            _ = try StateStreamInput(source: FailingSource())
        }
    }

    @Test func pipeInputIsReadToTheEnd() throws {
        var generator = SeededGenerator(seed: 42)
        let chunks = (0..<40).map { _ in TestStreams.bytes(Int.random(in: 1...70_000, using: &generator), using: &generator) }
        let stream = StreamBytes.frame(chunks)
        let readEnd = try TestStreams.pipe(stream)
        let input = try StateStreamInput(source: FileDescriptorSource(readEnd, closesOnDeinit: true))
        var reader = StateStreamReader(input: input)
        #expect(try TestStreams.record(&reader) == TestStreams.expectedEvents(chunks))
    }

    @Test func brokenPipeInputIsReportedLikeAFile() throws {
        let stream = Array(StreamBytes.frame([body0, body1]).dropLast(7))
        let readEnd = try TestStreams.pipe(stream)
        var reader = StateStreamReader(input: try StateStreamInput(source: FileDescriptorSource(readEnd, closesOnDeinit: true)))
        let chunk = Chunk(index: 1, offset: 15, length: 6)
        #expect(try TestStreams.record(&reader).last == .problem(.truncatedChunk(chunk, presentBytes: 3)))
    }
}

/// `skipPayload()` after each `chunkStart`: the same events as reading, less
/// the payloads, whatever the source, its read sizes or the reader's buffer.
@Suite struct StateStreamReaderSkippingTests {
    static let streams: [[UInt8]] = {
        let big = [UInt8](repeating: 0xab, count: 5000)
        let framed = StreamBytes.frame([Array("first chunk".utf8), big, Array("x".utf8)])
        return [
            framed,
            Array(framed.prefix(4 + 11 + 4 + 2500)),  // cut inside the big body
            Array(framed.prefix(4 + 11 + 2)),  // cut inside a length field
            StreamBytes.frame([big], terminator: false),
            framed + [1, 2, 3],  // trailing data
        ]
    }()

    private static func skippingEvents(_ reader: inout StateStreamReader) throws -> [RecordedEvent] {
        var events: [RecordedEvent] = []
        while let event = try reader.next() {
            switch event {
            case .chunkStart(let chunk):
                events.append(.chunkStart(chunk))
                try reader.skipPayload()
            case .payload(let bytes): events.append(.payload(Array(bytes)))
            case .chunkEnd(let chunk): events.append(.chunkEnd(chunk))
            case .terminator(let offset): events.append(.terminator(offset))
            case .problem(let problem): events.append(.problem(problem))
            }
        }
        return events
    }

    private static func withoutPayloads(_ events: [RecordedEvent]) -> [RecordedEvent] {
        events.filter { if case .payload = $0 { return false } else { return true } }
    }

    @Test(arguments: 0..<5, [1, 7, 4096, 1 << 20])
    func skippingInMemoryGivesTheSameEventsLessPayloads(stream: Int, size: Int) throws {
        let bytes = Self.streams[stream]
        let expected = Self.withoutPayloads(try TestStreams.events(of: bytes, maximumChunkLength: 4096))
        var reader = StateStreamReader(source: ByteArraySource(bytes, maximumReadSize: size), maximumChunkLength: 4096, bufferSize: max(4, min(size, 4096)))
        #expect(try Self.skippingEvents(&reader) == expected)
    }

    @Test(arguments: 0..<5)
    func skippingAFileReadsOnlyTheLengthFields(stream: Int) throws {
        let bytes = Self.streams[stream]
        let expected = Self.withoutPayloads(try TestStreams.events(of: bytes, maximumChunkLength: 4096))
        let file = try TestStreams.temporaryFile(bytes)
        defer { try? file.close() }
        let source = CountingSource(try PositionalFileSource(file))
        var reader = StateStreamReader(source: source, maximumChunkLength: 4096, bufferSize: 4)
        #expect(try Self.skippingEvents(&reader) == expected)
        if stream == 0 {
            #expect(source.bytesRead == 16)  // three length fields and the terminator
        }
    }
}
