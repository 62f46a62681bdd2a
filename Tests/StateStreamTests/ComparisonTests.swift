import StateStream
import TestSupport
import Testing

@Suite struct ComparisonTests {
    private func payload(_ count: Int, seed: UInt64 = 1) -> [UInt8] {
        var generator = SeededGenerator(seed: seed)
        return TestStreams.bytes(count, using: &generator)
    }

    private func compare(_ a: [UInt8], _ b: [UInt8], maximumRanges: Int = 16, context: Int = 4) throws -> PayloadComparison {
        try PayloadComparison.compare(TestStreams.input(a), TestStreams.input(b), maximumRanges: maximumRanges, contextLength: context)
    }

    @Test func identicalStreamsAreIdentical() throws {
        let stream = StreamBytes.frame(TestStreams.split(payload(10_000), size: 999))
        let comparison = try compare(stream, stream)
        #expect(comparison.identical)
        #expect(comparison.ranges.isEmpty)
        #expect(comparison.differingBytes == 0)
        #expect(try FramingComparison.compare(TestStreams.input(stream), TestStreams.input(stream)).identical)
    }

    @Test func samePayloadOtherChunkingIsTheSameUnlessFramingIsCompared() throws {
        let data = payload(10_000)
        let a = StreamBytes.frame(TestStreams.split(data, size: 999))
        var generator = SeededGenerator(seed: 5)
        let b = StreamBytes.frame(TestStreams.randomSplit(data, using: &generator, maximum: 3000))
        #expect(try compare(a, b).identical)
        let framing = try FramingComparison.compare(TestStreams.input(a), TestStreams.input(b))
        #expect(!framing.identical)
        #expect(framing.firstDifferingChunk == 0)
        #expect(framing.chunkInA?.length == 999)
    }

    @Test(arguments: [0, 5_000, 9_999])
    func oneChangedByteIsFoundWithItsLocations(position: Int) throws {
        let data = payload(10_000)
        var changed = data
        changed[position] ^= 0xFF
        let a = StreamBytes.frame(TestStreams.split(data, size: 1000))
        let b = StreamBytes.frame(TestStreams.split(changed, size: 3000))
        let comparison = try compare(a, b)
        #expect(comparison.firstDifference == UInt64(position))
        #expect(comparison.ranges == [UInt64(position)..<UInt64(position + 1)])
        #expect(comparison.differingBytes == 1)
        let offsetInA = UInt64(position / 1000 * 1004 + 4 + position % 1000)
        let offsetInB = UInt64(position / 3000 * 3004 + 4 + position % 3000)
        let inA = PayloadComparison.Location(chunkIndex: position / 1000, fileOffset: offsetInA)
        let inB = PayloadComparison.Location(chunkIndex: position / 3000, fileOffset: offsetInB)
        #expect(comparison.firstDifferenceInA == inA)
        #expect(comparison.firstDifferenceInB == inB)
        #expect(comparison.contextBefore == Array(data[max(0, position - 4)..<position]))
        #expect(comparison.contextA == Array(data[position..<min(position + 4, data.count)]))
        #expect(comparison.contextB == Array(changed[position..<min(position + 4, data.count)]))
        #expect(comparison.contextOffset == UInt64(max(0, position - 4)))
    }

    @Test func prefixIsALengthDifference() throws {
        let data = payload(5000)
        let a = StreamBytes.frame(TestStreams.split(Array(data.prefix(3000)), size: 700))
        let b = StreamBytes.frame(TestStreams.split(data, size: 1100))
        let comparison = try compare(a, b)
        #expect(comparison.a.payloadBytes == 3000)
        #expect(comparison.b.payloadBytes == 5000)
        #expect(comparison.firstDifference == 3000)
        #expect(comparison.firstDifferenceInA == nil)
        let inB = PayloadComparison.Location(chunkIndex: 2, fileOffset: 2 * 1104 + 4 + 800)
        #expect(comparison.firstDifferenceInB == inB)
        #expect(comparison.ranges == [3000..<5000])
        #expect(comparison.differingBytes == 2000)
        #expect(comparison.contextA.isEmpty)
        #expect(comparison.contextB == Array(data[3000..<3004]))
    }

    @Test func rawAndZstdOfTheSameStreamAreIdentical() throws {
        let stream = StreamBytes.frame(TestStreams.split(payload(20_000), size: 4096))
        let comparison = try compare(stream, TestStreams.zstd(stream))
        #expect(comparison.identical)
        #expect(comparison.b.compression == .zstd)
    }

    @Test func rangesMergeAndAreCapped() throws {
        let data = payload(1000)
        var changed = data
        for index in [10, 11, 12, 50, 100, 101, 500] { changed[index] ^= 1 }
        let comparison = try compare(StreamBytes.frame([data]), StreamBytes.frame([changed]), maximumRanges: 2)
        #expect(comparison.ranges == [10..<13, 50..<51])
        #expect(comparison.omittedRangeCount == 2)
        #expect(comparison.differingBytes == 7)
    }

    @Test func realCapturesBAndCDifferInTheManifestsTwentyTwoBytes() throws {
        let b = try StateStreamInput(path: fixturesDirectory + "/state/s1-B-stopped-nochange.state")
        let c = try StateStreamInput(path: fixturesDirectory + "/state/s1-C-relookup.state")
        let comparison = try PayloadComparison.compare(b, c, maximumRanges: 100)
        let offsets: [UInt64] = [8, 18, 27, 36, 45, 54, 63, 72, 81, 90, 99, 108, 117, 126, 135, 144, 153, 162, 171, 180, 189, 238_445]
        #expect(comparison.ranges == offsets.map { $0..<$0 + 1 })
        #expect(comparison.differingBytes == 22)
        #expect(comparison.a.payloadBytes == comparison.b.payloadBytes)
    }

    @Test func realCapturesAAndBAreIdenticalAndCAndDDifferInLength() throws {
        let state = { (name: String) in try StateStreamInput(path: fixturesDirectory + "/state/\(name).state") }
        #expect(try PayloadComparison.compare(state("s1-A-running"), state("s1-B-stopped-nochange")).identical)
        let cd = try PayloadComparison.compare(state("s1-C-relookup"), state("s1-D-more-open"))
        #expect(!cd.identical)
        #expect(cd.a.payloadBytes == 238_452)
        #expect(cd.b.payloadBytes == 238_624)
        #expect(cd.ranges.last?.upperBound == 238_624)
    }
}
