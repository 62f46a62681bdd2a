import StateStream

/// The state-stream reader fed arbitrary bytes with varied read sizes and
/// buffer sizes (so every split of a body is reachable):
/// - problem offsets lie within the input (framed offsets within the framed
///   bytes, compressed offsets within the compressed input);
/// - the events are consistent (a chunk's payload adds up to its length);
/// - a raw input the reader accepts re-encodes, chunk by chunk, to the same bytes.
enum StateStreamReaderTarget {
    static func run(_ bytes: [UInt8]) throws {
        // The first byte picks the read pattern and buffer size.
        let seed = Int(bytes.first ?? 0)
        let scale = [1, 1, 17, 4099][seed % 4]
        let events = try ReaderEvents.read(
            bytes, readSizes: { call in ((call * 7 + seed) % 13 + 1) * scale }, bufferSize: 4 + seed % 61)
        if events.valid && events.compression == .none {
            try check(events.reencoded == bytes, "an accepted stream does not re-encode to the same bytes")
        }
    }
}

/// Reads a stream through the reader, checking its events as they come, and
/// re-encodes what it accepted.
struct ReaderEvents {
    var compression = Compression.none
    var valid = true
    var reencoded: [UInt8] = []
    var problems: [StreamProblem] = []

    static func read(_ bytes: [UInt8], readSizes: @escaping (Int) -> Int, bufferSize: Int) throws -> ReaderEvents {
        var result = ReaderEvents()
        let input = try StateStreamInput(source: ByteArraySource(bytes, readSizes: readSizes))
        result.compression = input.compression
        var reader = StateStreamReader(input: input, bufferSize: bufferSize)
        let sink = ByteArraySink()
        var writer = StateStreamWriter(sink: sink)
        var current: Chunk?
        var bodyBytes: UInt64 = 0
        while let event = try reader.next() {
            switch event {
            case .chunkStart(let chunk):
                try check(current == nil, "chunk \(chunk.index) started inside a chunk")
                current = chunk
                bodyBytes = 0
                try writer.writeChunkHeader(length: chunk.length)
            case .payload(let piece):
                try check(current != nil, "payload outside a chunk")
                bodyBytes += UInt64(piece.count)
                try check(bodyBytes <= UInt64(current!.length), "more payload than chunk \(current!.index) declares")
                try piece.withUnsafeBytes { buffer in
                    Result { () throws(OutputError) in try writer.writeChunkBody(buffer) }
                }.get()
            case .chunkEnd(let chunk):
                try check(chunk == current && bodyBytes == UInt64(chunk.length), "chunk \(chunk.index)'s body does not add up")
                current = nil
            case .terminator(let offset):
                try check(offset <= reader.framedBytesRead, "terminator beyond the input")
            case .problem(let problem):
                let limit = problem.offsetIsCompressed ? UInt64(bytes.count) : reader.framedBytesRead
                try check(problem.offset <= limit, "\(problem) lies beyond the input")
                if problem.severity == .error { result.valid = false }
                result.problems.append(problem)
            }
        }
        if result.valid {
            try writer.finish()
            result.reencoded = sink.bytes
        }
        return result
    }
}
