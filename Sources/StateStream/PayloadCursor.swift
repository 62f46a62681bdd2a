/// Walks the payload of a stream byte range by byte range, knowing for each
/// byte its payload offset, its chunk and its offset in the framed stream.
///
/// Used to compare two streams in lockstep. It records every event in an
/// analyzer, so the stream is fully checked by the time the cursor is done.
struct PayloadCursor: ~Copyable {
    private var reader: StateStreamReader
    private var analyzer: StreamAnalyzer
    private let compressedBytes: () -> UInt64?
    /// Unread bytes of the current payload piece.
    private(set) var piece: ArraySlice<UInt8> = []
    /// Payload offset of `piece.first`.
    private(set) var payloadOffset: UInt64 = 0
    /// Framed offset of `piece.first`.
    private var fileOffset: UInt64 = 0
    private var chunkIndex = 0
    /// Framed offset where the next payload piece of the current chunk starts.
    private var nextBodyOffset: UInt64 = 0
    private var ended = false

    init(_ input: StateStreamInput, maximumChunkLength: UInt32) {
        reader = StateStreamReader(input: input, maximumChunkLength: maximumChunkLength)
        analyzer = StreamAnalyzer(compression: input.compression, computeDigest: false)
        compressedBytes = { input.compressedBytesRead }
    }

    /// Makes `piece` non-empty; returns `false` once the payload is over.
    mutating func fill() throws -> Bool {
        while piece.isEmpty {
            guard !ended, let event = try reader.next() else {
                ended = true
                return false
            }
            analyzer.record(event)
            switch event {
            case .chunkStart(let chunk):
                chunkIndex = chunk.index
                nextBodyOffset = chunk.payloadOffset
            case .payload(let bytes):
                piece = bytes
                fileOffset = nextBodyOffset
                nextBodyOffset += UInt64(bytes.count)
            case .chunkEnd, .terminator, .problem:
                break
            }
        }
        return true
    }

    /// Moves past the first `count` bytes of `piece`.
    mutating func advance(by count: Int) {
        piece = piece.dropFirst(count)
        payloadOffset += UInt64(count)
        fileOffset += UInt64(count)
    }

    /// Where the first byte of `piece` sits.
    var location: PayloadComparison.Location {
        PayloadComparison.Location(chunkIndex: chunkIndex, fileOffset: fileOffset)
    }

    /// Reads whatever is left and returns the analysis of the whole stream.
    mutating func finish() throws -> StreamAnalysis {
        while try fill() { advance(by: piece.count) }
        return analyzer.finish(framedBytes: reader.framedBytesRead, compressedBytes: compressedBytes())
    }
}
