import CZstd
import Foundation
import StateStream
import SystemPackage

/// Builds streams for tests, independently of the code under test.
enum TestStreams {
    /// One zstd frame with a content checksum, made by libzstd.
    static func zstd(_ bytes: [UInt8], level: Int32 = 3) -> [UInt8] {
        let context = ZSTD_createCCtx()!
        defer { ZSTD_freeCCtx(context) }
        ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level)
        ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1)
        var out = [UInt8](repeating: 0, count: ZSTD_compressBound(bytes.count))
        let size = out.withUnsafeMutableBytes { dst in
            bytes.withUnsafeBytes { src in
                ZSTD_compress2(context, dst.baseAddress, dst.count, src.baseAddress, src.count)
            }
        }
        precondition(ZSTD_isError(size) == 0)
        return Array(out.prefix(size))
    }

    /// A skippable frame (magic 0x184D2A50 + `variant`) holding `content`.
    static func skippableFrame(_ content: [UInt8], variant: UInt8 = 0) -> [UInt8] {
        let size = UInt32(content.count)
        return [0x50 + variant, 0x2A, 0x4D, 0x18,
                UInt8(size & 0xff), UInt8(size >> 8 & 0xff), UInt8(size >> 16 & 0xff), UInt8(size >> 24)] + content
    }

    /// Deterministic pseudo-random bytes.
    static func bytes(_ count: Int, using generator: inout some RandomNumberGenerator) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    /// Every event of a stream, with payload pieces copied out.
    static func events(
        of bytes: [UInt8],
        readSizes: @escaping (Int) -> Int = { _ in .max },
        maximumChunkLength: UInt32 = StateStreamFormat.qemuMaximumChunkLength,
        bufferSize: Int = 1 << 20
    ) throws -> [RecordedEvent] {
        let input = try StateStreamInput(source: ByteArraySource(bytes, readSizes: readSizes))
        var reader = StateStreamReader(input: input, maximumChunkLength: maximumChunkLength, bufferSize: bufferSize)
        return try record(&reader)
    }

    static func record(_ reader: inout StateStreamReader) throws -> [RecordedEvent] {
        var events: [RecordedEvent] = []
        while let event = try reader.next() {
            switch event {
            case .chunkStart(let chunk): events.append(.chunkStart(chunk))
            case .payload(let bytes):
                // Pieces of one chunk merge: where the reader splits them carries no meaning.
                if case .payload(let previous) = events.last {
                    events[events.count - 1] = .payload(previous + Array(bytes))
                } else {
                    events.append(.payload(Array(bytes)))
                }
            case .chunkEnd(let chunk): events.append(.chunkEnd(chunk))
            case .terminator(let offset): events.append(.terminator(offset))
            case .problem(let problem): events.append(.problem(problem))
            }
        }
        return events
    }

    /// The events a correct reader reports for `chunks` (terminated).
    static func expectedEvents(_ chunks: [[UInt8]]) -> [RecordedEvent] {
        var events: [RecordedEvent] = []
        var offset: UInt64 = 0
        for (index, body) in chunks.enumerated() {
            let chunk = Chunk(index: index, offset: offset, length: UInt32(body.count))
            events += [.chunkStart(chunk), .payload(body), .chunkEnd(chunk)]
            offset += 4 + UInt64(body.count)
        }
        return events + [.terminator(offset)]
    }

    /// A regular file holding `bytes`, open for reading; its name is gone already.
    static func temporaryFile(_ bytes: [UInt8]) throws -> FileDescriptor {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("statetool-\(UUID().uuidString)").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try FileDescriptor.open(FilePath(path), .readOnly)
    }

    /// Writes `bytes` into a pipe from another thread and returns the read end.
    static func pipe(_ bytes: [UInt8]) throws -> FileDescriptor {
        let (readEnd, writeEnd) = try FileDescriptor.pipe()
        let thread = Thread { _ = try? writeEnd.writeAll(bytes); try? writeEnd.close() }
        thread.start()
        return readEnd
    }
}

/// A reader event with its payload copied, comparable in tests.
enum RecordedEvent: Equatable, CustomStringConvertible {
    case chunkStart(Chunk)
    case payload([UInt8])
    case chunkEnd(Chunk)
    case terminator(UInt64)
    case problem(StreamProblem)

    var description: String {
        switch self {
        case .chunkStart(let chunk): return "chunkStart(\(chunk.index)@\(chunk.offset) len \(chunk.length))"
        case .payload(let bytes): return "payload(\(bytes.count) bytes)"
        case .chunkEnd(let chunk): return "chunkEnd(\(chunk.index))"
        case .terminator(let offset): return "terminator(\(offset))"
        case .problem(let problem): return "problem(\(problem))"
        }
    }
}

extension TestStreams {
    /// `input` read as a stream (raw or zstd detected).
    static func input(_ bytes: [UInt8]) throws -> StateStreamInput {
        try StateStreamInput(source: ByteArraySource(bytes, maximumReadSize: 4093))
    }

    /// `payload` cut into chunks of `size` bytes, the last one shorter.
    static func split(_ payload: [UInt8], size: Int) -> [[UInt8]] {
        stride(from: 0, to: payload.count, by: size).map { Array(payload[$0..<min($0 + size, payload.count)]) }
    }

    /// Random chunk lengths adding up to `payload.count`.
    static func randomSplit(_ payload: [UInt8], using generator: inout some RandomNumberGenerator, maximum: Int = 200) -> [[UInt8]] {
        var chunks: [[UInt8]] = []
        var position = 0
        while position < payload.count {
            let length = min(payload.count - position, Int.random(in: 1...maximum, using: &generator))
            chunks.append(Array(payload[position..<position + length]))
            position += length
        }
        return chunks
    }
}
