import Foundation
import StateStream
import TestSupport
import Testing

/// gzip, bzip2 and xz: read through zlib, libbz2 and liblzma, written by
/// their own command-line tools (and the other way round).
@Suite struct CompressionFormatTests {
    static let formats: [(Compression, String)] = [(.gzip, "/usr/bin/gzip"), (.bzip2, "/usr/bin/bzip2"), (.xz, "/usr/bin/xz")]
    let chunks: [[UInt8]] = [Array("alpha".utf8), (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }, Array("omega".utf8)]
    var stream: [UInt8] { StreamBytes.frame(chunks) }

    /// `bytes` through `tool` (`-c`, or `-dc` to decompress).
    private func run(_ tool: String, _ arguments: [String], _ bytes: [UInt8]) throws -> [UInt8] {
        let result = try ProcessRunner.run(tool, arguments, stdin: Data(bytes))
        try #require(result.status == 0, "\(tool) \(arguments) failed: \(result.stderr)")
        return Array(result.stdoutBytes)
    }

    /// Everything a source hands out, read `readSize` bytes at a time.
    private func drain(_ source: any ByteSource, readSize: Int = 1 << 16) throws(InputError) -> [UInt8] {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: readSize)
        while true {
            let count = try buffer.withUnsafeMutableBytes { pointer in
                Result { () throws(InputError) in try source.read(into: pointer) }
            }.get()
            if count == 0 { return out }
            out += buffer[..<count]
        }
    }

    private func decompressed(_ bytes: [UInt8], readSizes: @escaping (Int) -> Int = { _ in .max }) throws(InputError) -> [UInt8] {
        try drain(StateStreamInput(source: ByteArraySource(bytes, readSizes: readSizes)).framedSource)
    }

    private func failure(_ bytes: [UInt8]) -> CompressionFailure? {
        do {
            _ = try decompressed(bytes)
            return nil
        } catch {
            if case .compression(let failure) = error { return failure }
            return nil
        }
    }

    @Test func formatsAreDetectedFromTheirMagic() throws {
        for (format, tool) in Self.formats {
            #expect(Compression.detect(leadingBytes: try run(tool, ["-c"], stream)) == format)
        }
        #expect(Compression.detect(leadingBytes: [0x1F, 0x8B, 0x07]) == .none)  // not deflate
        #expect(Compression.detect(leadingBytes: Array("BZh0".utf8)) == .none)  // no such block size
        #expect(Compression.detect(leadingBytes: [0x89, 0x4C, 0x5A, 0x4F, 0x00, 0x0D, 0x0A, 0x1A, 0x0A]) == .lzop)
        #expect(Compression.detect(leadingBytes: Array("QEVM".utf8)) == .none)
    }

    @Test(arguments: formats)
    func whatTheToolWritesReadsBackInEverySplit(format: Compression, tool: String) throws {
        let compressed = try run(tool, ["-c"], stream)
        let disagreement = try SplitVerifier.firstDisagreement(count: min(compressed.count, 300)) { split in
            try decompressed(compressed, readSizes: split.readSizes)
        }
        #expect(disagreement == nil, "\(disagreement.map { "\($0.split)" } ?? "")")
        #expect(try decompressed(compressed) == stream)
        #expect(try TestStreams.events(of: compressed, readSizes: { $0 % 7 + 1 }) == TestStreams.expectedEvents(chunks))
    }

    @Test(arguments: formats)
    func whatStatetoolWritesTheToolReads(format: Compression, tool: String) throws {
        let collected = ByteArraySink()
        let compressor = try #require(try format.compressor(into: collected))
        for piece in stride(from: 0, to: stream.count, by: 1000) {
            try compressor.write(Array(stream[piece..<min(piece + 1000, stream.count)]))
        }
        try compressor.finish()
        #expect(Compression.detect(leadingBytes: collected.bytes) == format)
        #expect(try run(tool, ["-dc"], collected.bytes) == stream)
        #expect(try ProcessRunner.run(tool, ["-t"], stdin: Data(collected.bytes)).status == 0)
    }

    @Test(arguments: formats)
    func concatenatedFramesAreOneInput(format: Compression, tool: String) throws {
        let cut = stream.count / 3
        let joined = try run(tool, ["-c"], Array(stream[..<cut])) + run(tool, ["-c"], Array(stream[cut...]))
        #expect(try decompressed(joined, readSizes: { $0 % 5 + 1 }) == stream)
    }

    @Test(arguments: formats)
    func aCutInputIsTruncatedAtItsEnd(format: Compression, tool: String) throws {
        let compressed = try run(tool, ["-c"], stream)
        let cut = Array(compressed.dropLast(9))
        #expect(failure(cut) == CompressionFailure(format: format, frameOffset: 0, reason: .truncatedFrame(inputLength: UInt64(cut.count))))
    }

    @Test(arguments: formats)
    func garbageAfterTheLastFrameIsNamedAtItsOffset(format: Compression, tool: String) throws {
        let compressed = try run(tool, ["-c"], stream)
        let found = failure(compressed + Array("garbage!".utf8))
        #expect(found == CompressionFailure(format: format, frameOffset: UInt64(compressed.count), reason: .notAFrame))
        #expect(found?.description == "data at compressed offset \(compressed.count) is not a \(format == .gzip ? "gzip member" : "\(format.rawValue) stream") (trailing garbage after the last \(format == .gzip ? "member" : "stream"))")
    }

    @Test func aDamagedGzipChecksumIsAChecksumMismatch() throws {
        var compressed = try run("/usr/bin/gzip", ["-c"], stream)
        compressed[compressed.count - 8] ^= 0xFF  // the CRC-32 of the trailer
        let found = failure(compressed)
        #expect(found == CompressionFailure(format: .gzip, frameOffset: 0, reason: .checksumMismatch))
        #expect(found?.description == "checksum mismatch in the gzip member starting at compressed offset 0")
    }

    @Test(arguments: [(Compression.bzip2, "/usr/bin/bzip2"), (.xz, "/usr/bin/xz")])
    func damagedBytesInsideAFrameAreCorrupt(format: Compression, tool: String) throws {
        var compressed = try run(tool, ["-c"], stream)
        compressed[compressed.count / 2] ^= 0x55
        let found = try #require(failure(compressed))
        #expect(found.format == format && found.frameOffset == 0)
        switch found.reason {
        case .checksumMismatch, .corrupt: break
        default: Issue.record("unexpected \(found)")
        }
    }

    @Test func offsetsOfAFrameInsideAContainerCountFromTheContainer() throws {
        let compressed = try run("/usr/bin/gzip", ["-c"], stream)
        let input = try StateStreamInput(
            contents: ByteArraySource(Array(compressed.dropLast(4))), compression: .gzip, regularFile: nil, regularFileSize: nil,
            baseOffset: 5000, storedOffset: 1000)
        #expect(input.baseOffset == 5000)
        do {
            _ = try drain(input.framedSource)
            Issue.record("a cut member read to its end")
        } catch {
            #expect(error == .compression(CompressionFailure(
                format: .gzip, frameOffset: 1000, reason: .truncatedFrame(inputLength: UInt64(1000 + compressed.count - 4)))))
        }
    }

    @Test func lzopIsNamedNotRead() throws {
        let lzop: [UInt8] = [0x89, 0x4C, 0x5A, 0x4F, 0x00, 0x0D, 0x0A, 0x1A, 0x0A, 0x10]
        #expect(throws: InputError.unsupportedCompression(.lzop)) { try StateStreamInput(source: ByteArraySource(lzop)) }
        #expect(InputError.unsupportedCompression(.lzop).description.contains("lzop -dc"))
    }
}
