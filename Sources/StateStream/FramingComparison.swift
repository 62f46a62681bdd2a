/// How the chunk layouts of two streams compare: the lengths of their chunks,
/// index by index, regardless of the payload bytes.
public struct FramingComparison: Sendable {
    /// The first stream, as `inspect` would describe it.
    public var a: StreamAnalysis
    /// The second stream.
    public var b: StreamAnalysis
    /// The first chunk index whose length differs, or that only one stream has;
    /// `nil` when the layouts are identical.
    public var firstDifferingChunk: Int?
    /// That chunk in `a`, if `a` has it.
    public var chunkInA: Chunk?
    /// That chunk in `b`, if `b` has it.
    public var chunkInB: Chunk?
    /// How many chunk indexes differ in length or exist in only one stream.
    public var differingChunkCount = 0

    /// Whether both streams have the same chunk lengths in the same order.
    public var identical: Bool { firstDifferingChunk == nil }

    /// Compares the chunk layouts of `first` and `second`, reading both to the end.
    public static func compare(
        _ first: StateStreamInput,
        _ second: StateStreamInput,
        maximumChunkLength: UInt32 = StateStreamFormat.qemuMaximumChunkLength
    ) throws -> FramingComparison {
        var a = ChunkCursor(first, maximumChunkLength: maximumChunkLength)
        var b = ChunkCursor(second, maximumChunkLength: maximumChunkLength)
        var firstIndex: Int?
        var firstA: Chunk?, firstB: Chunk?
        var differing = 0
        while true {
            let chunkA = try a.next(), chunkB = try b.next()
            if chunkA == nil && chunkB == nil { break }
            if chunkA?.length != chunkB?.length {
                differing += 1
                if firstIndex == nil {
                    firstIndex = chunkA?.index ?? chunkB?.index
                    firstA = chunkA
                    firstB = chunkB
                }
            }
        }
        var comparison = FramingComparison(a: try a.finish(), b: try b.finish())
        comparison.firstDifferingChunk = firstIndex
        comparison.chunkInA = firstA
        comparison.chunkInB = firstB
        comparison.differingChunkCount = differing
        return comparison
    }
}

/// Steps through a stream's complete chunks, recording every event.
private struct ChunkCursor: ~Copyable {
    private var reader: StateStreamReader
    private var analyzer: StreamAnalyzer
    private let compressedBytes: () -> UInt64?

    init(_ input: StateStreamInput, maximumChunkLength: UInt32) {
        reader = StateStreamReader(input: input, maximumChunkLength: maximumChunkLength)
        analyzer = StreamAnalyzer(compression: input.compression, computeDigest: false)
        compressedBytes = { input.compressedBytesRead }
    }

    /// The next complete chunk, or `nil` at the end.
    mutating func next() throws -> Chunk? {
        while let event = try reader.next() {
            analyzer.record(event)
            if case .chunkEnd(let chunk) = event { return chunk }
        }
        return nil
    }

    mutating func finish() throws -> StreamAnalysis {
        while try next() != nil {}
        return analyzer.finish(framedBytes: reader.framedBytesRead, compressedBytes: compressedBytes())
    }
}
