import Crypto
import StateStream
import TestSupport
import Testing

@Suite struct StreamAnalysisTests {
    private func analyze(_ bytes: [UInt8], maximumChunkLength: UInt32 = 1 << 20) throws -> StreamAnalysis {
        try StreamAnalysis.analyze(
            StateStreamInput(source: ByteArraySource(bytes, maximumReadSize: 3)),
            maximumChunkLength: maximumChunkLength, computeDigest: true)
    }

    private func sha256(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    @Test func validStreamSummary() throws {
        let chunks: [[UInt8]] = [Array(repeating: 1, count: 10), Array(repeating: 2, count: 30), Array(repeating: 3, count: 20)]
        let analysis = try analyze(StreamBytes.frame(chunks))
        #expect(analysis.isValid())
        #expect(analysis.chunkCount == 3)
        #expect(analysis.payloadBytes == 60)
        #expect(analysis.framedBytes == 76)
        #expect(analysis.framingOverhead == 16)
        #expect(analysis.terminatorOffset == 72)
        #expect(analysis.validPrefixLength == 76)
        #expect(analysis.payloadSHA256 == sha256(chunks.flatMap { $0 }))
        #expect(analysis.chunkSizes.minimum == 10)
        #expect(analysis.chunkSizes.median == 20)
        #expect(analysis.chunkSizes.maximum == 30)
        #expect(analysis.compression == .none)
        #expect(analysis.compressedBytes == nil)
    }

    @Test func truncatedChunkIsLeftOutOfCountsAndDigest() throws {
        let chunks: [[UInt8]] = [Array("complete".utf8), Array("partial!".utf8)]
        let stream = Array(StreamBytes.frame(chunks, terminator: false).dropLast(3))
        let analysis = try analyze(stream)
        #expect(!analysis.isValid())
        #expect(analysis.chunkCount == 1)
        #expect(analysis.payloadBytes == 8)
        #expect(analysis.validPrefixLength == 12)
        #expect(analysis.framedBytes == UInt64(stream.count))
        #expect(analysis.payloadSHA256 == sha256(chunks[0]))
        #expect(analysis.error?.kind == .truncatedChunk)
    }

    @Test func warningsAreValidUnlessStrict() throws {
        let analysis = try analyze(StreamBytes.frame([Array(repeating: 0, count: 100)]), maximumChunkLength: 50)
        #expect(analysis.isValid())
        #expect(!analysis.isValid(strict: true))
        #expect(analysis.problems.map(\.kind) == [.oversizedChunk])
    }

    @Test func keptProblemsAreBoundedButTheErrorIsKept() throws {
        let count = StreamAnalysis.problemLimit + 5
        let stream = Array(StreamBytes.frame(Array(repeating: [1, 2], count: count)).dropLast())
        let analysis = try analyze(stream, maximumChunkLength: 1)
        #expect(analysis.problems.count == StreamAnalysis.problemLimit + 1)
        #expect(analysis.omittedProblemCount == 5)
        #expect(analysis.error == .truncatedLength(at: UInt64(count * 6), presentBytes: 3))
    }

    @Test func zstdInputReportsCompressedBytes() throws {
        let compressed = TestStreams.zstd(StreamBytes.frame([Array(repeating: 9, count: 4000)]))
        let analysis = try analyze(compressed)
        #expect(analysis.compression == .zstd)
        #expect(analysis.compressedBytes == UInt64(compressed.count))
        #expect(analysis.framedBytes == 4008)
    }

    @Test func realVirtiofsdStateMatchesItsManifest() throws {
        let path = fixturesDirectory + "/state/s1-A-running.state"
        let analysis = try StreamAnalysis.analyze(StateStreamInput(path: path), computeDigest: true)
        #expect(analysis.isValid(strict: true))
        #expect(analysis.chunkCount == 4)
        #expect(analysis.payloadBytes == 238_452)
        #expect(analysis.framedBytes == 238_472)
        #expect(analysis.chunkSizes.minimum == 41_844)
        #expect(analysis.chunkSizes.maximum == 65_536)
        #expect(analysis.payloadSHA256 == "6fee85a91ea77fc233220eb9aeb758055dca68b6d17e667bc5572609f1f1584b")
    }

    @Test(arguments: [
        ("s2-verify-handles", 5, 295_894, "d2d97f2994f4e38981279d77098b14acbd3a450b0cef7cff9ac0820ebf4497bf"),
        ("s3-file-handles", 2, 85_030, "2dc9e71ea99d986e29c9dc1be5ff4d0bf8b8bde027a21d960bd76289d36154d8"),
        ("s1-D-more-open", 4, 238_624, "83b9f94dc311e9a63b78202af19702f4a1db7949b3cb313e2d0082cf52cb517e"),
    ])
    func everyRealCaptureMatchesItsManifest(name: String, chunks: Int, payload: UInt64, digest: String) throws {
        let analysis = try StreamAnalysis.analyze(StateStreamInput(path: fixturesDirectory + "/state/\(name).state"), computeDigest: true)
        #expect(analysis.isValid(strict: true))
        #expect(analysis.chunkCount == chunks)
        #expect(analysis.payloadBytes == payload)
        #expect(analysis.payloadSHA256 == digest)
    }

    @Test func missingFileCannotBeOpened() {
        #expect(throws: InputError.cannotOpen(.noSuchFileOrDirectory)) {
            _ = try StateStreamInput(path: "/nonexistent/statetool-test")
        }
    }
}

/// `Tests/Fixtures/qemu-virtiofsd`.
let fixturesDirectory = Repository.fixtures.path
