/// Turns a damaged stream into a valid one, keeping everything that can be kept
/// and saying exactly what changed.
///
/// Every complete chunk is kept as it was (so a valid stream comes out byte for
/// byte the same); the partial tail of a truncated chunk is dropped, or kept as a
/// last, shorter chunk; a partial length field and data after the terminator are
/// dropped; a missing terminator is added. A broken zstd layer ends the stream
/// where decoding stopped.
public enum StreamRepair {
    /// One change `repair` made. Offsets are in the input's framed stream unless
    /// they say otherwise.
    public enum Change: Finding, Hashable {
        /// A truncated chunk was left out: its length field and present bytes.
        case droppedPartialChunk(Chunk, presentBytes: UInt64)
        /// A truncated chunk's present bytes were kept as a last chunk of that length.
        case keptPartialChunk(Chunk, presentBytes: UInt64)
        /// The bytes of a partial length field were left out.
        case droppedPartialLength(at: UInt64, presentBytes: Int)
        /// Bytes after the terminator were left out.
        case droppedTrailingData(at: UInt64, byteCount: UInt64)
        /// Decoding the zstd input failed; the stream ends where it stopped.
        case stoppedAtCompressionError(CompressionFailure)
        /// A terminator was written at this offset of the output.
        case addedTerminator(outputOffset: UInt64)

        /// The stable names of the kinds of change.
        public enum Kind: String, Sendable, CaseIterable {
            /// A ``StreamRepair/Change/droppedPartialChunk(_:presentBytes:)``.
            case droppedPartialChunk = "dropped-partial-chunk"
            /// A ``StreamRepair/Change/keptPartialChunk(_:presentBytes:)``.
            case keptPartialChunk = "kept-partial-chunk"
            /// A ``StreamRepair/Change/droppedPartialLength(at:presentBytes:)``.
            case droppedPartialLength = "dropped-partial-length"
            /// A ``StreamRepair/Change/droppedTrailingData(at:byteCount:)``.
            case droppedTrailingData = "dropped-trailing-data"
            /// A ``StreamRepair/Change/stoppedAtCompressionError(_:)``.
            case stoppedAtCompressionError = "stopped-at-compression-error"
            /// An ``StreamRepair/Change/addedTerminator(outputOffset:)``.
            case addedTerminator = "added-terminator"
        }

        /// Which kind of change this is.
        public var kind: Kind {
            switch self {
            case .droppedPartialChunk: return .droppedPartialChunk
            case .keptPartialChunk: return .keptPartialChunk
            case .droppedPartialLength: return .droppedPartialLength
            case .droppedTrailingData: return .droppedTrailingData
            case .stoppedAtCompressionError: return .stoppedAtCompressionError
            case .addedTerminator: return .addedTerminator
            }
        }

        /// A change is no problem: what was wrong is the input's problem.
        public var severity: Severity { .note }

        /// The input's framed stream; the compressed input for a compression
        /// error; the output for an added terminator.
        public var offsetBase: OffsetBase {
            switch self {
            case .stoppedAtCompressionError: return .compressedInput
            case .addedTerminator: return .output
            default: return .input
            }
        }

        /// A change reads as the sentence that says what was done, where.
        public var message: String { description }

        /// Where the change is: an input offset, a compressed-input offset for
        /// a compression error, an output offset for an added terminator.
        public var offset: UInt64 {
            switch self {
            case .droppedPartialChunk(let chunk, _), .keptPartialChunk(let chunk, _): return chunk.offset
            case .droppedPartialLength(let offset, _), .droppedTrailingData(let offset, _): return offset
            case .stoppedAtCompressionError(let failure): return failure.frameOffset
            case .addedTerminator(let offset): return offset
            }
        }

        /// Framed input bytes this change left out.
        public var droppedBytes: UInt64 {
            switch self {
            case .droppedPartialChunk(_, let present): return UInt64(StateStreamFormat.lengthFieldSize) + present
            case .droppedPartialLength(_, let present): return UInt64(present)
            case .droppedTrailingData(_, let count): return count
            case .keptPartialChunk, .stoppedAtCompressionError, .addedTerminator: return 0
            }
        }

        /// What was done and where, in one sentence with its offsets (it
        /// replaces ``Finding``'s `kind at offset N: message` form).
        public var description: String {
            switch self {
            case .droppedPartialChunk(let chunk, let present):
                return "dropped truncated chunk \(chunk.index) at offset \(chunk.offset): its length field (declaring \(chunk.length) bytes) and the \(present) bytes present, \(droppedBytes) bytes in all"
            case .keptPartialChunk(let chunk, let present):
                return "kept the \(present) bytes present of truncated chunk \(chunk.index) at offset \(chunk.offset) (declared \(chunk.length)) as a last chunk of \(present) bytes"
            case .droppedPartialLength(let offset, let present):
                return "dropped the \(present)-byte partial length field at offset \(offset)"
            case .droppedTrailingData(let offset, let count):
                return "dropped \(count) bytes of trailing data at offset \(offset)"
            case .stoppedAtCompressionError(let failure):
                return "stopped where zstd decoding failed (\(failure)); nothing after it could be read"
            case .addedTerminator(let offset):
                return "added the terminator at output offset \(offset)"
            }
        }
    }

    /// What a repair read and wrote.
    public struct Report: Sendable {
        /// The input, as `inspect` would describe it.
        public var input: StreamAnalysis
        /// What changed; empty when the input was valid and is copied unchanged.
        public var changes: [Change]
        /// Data chunks in the output.
        public var outputChunks: Int
        /// Payload bytes in the output.
        public var outputPayloadBytes: UInt64
        /// Bytes of the (uncompressed) output stream.
        public var outputFramedBytes: UInt64 {
            StateStreamFormat.overhead(chunkCount: outputChunks) + outputPayloadBytes
        }
    }

    /// Repairs `input` into `sink`.
    ///
    /// A chunk longer than the reader's buffer is written as it is read; if it
    /// turns out truncated, its length field must be rewritten or cut off, which
    /// needs `sink` to be a rewindable ``OutputFile`` (a regular file, not a pipe
    /// and not compressed): otherwise ``OutputError/cannotRewind`` is thrown.
    public static func repair(
        _ input: StateStreamInput,
        to sink: any ByteSink,
        keepPartial: Bool,
        maximumChunkLength: UInt32 = StateStreamFormat.qemuMaximumChunkLength,
        observe: (borrowing StateStreamReader, StreamEvent) -> Void = { _, _ in }
    ) throws -> Report {
        var reader = StateStreamReader(input: input, maximumChunkLength: maximumChunkLength)
        var analyzer = StreamAnalyzer(compression: input.compression, computeDigest: false)
        var mending = Mending(sink: sink, keepPartial: keepPartial)
        while let event = try reader.next() {
            analyzer.record(event)
            observe(reader, event)
            try mending.apply(event, reader: reader)
        }
        let analysis = analyzer.finish(framedBytes: reader.framedBytesRead, compressedBytes: input.compressedBytesRead)
        return try mending.finish(analysis)
    }

    /// The output side of a repair: what it writes for each event, and the
    /// changes it makes.
    private struct Mending: ~Copyable {
        let sink: any ByteSink
        let keepPartial: Bool
        var writer: StateStreamWriter
        var changes: [Change] = []
        var keptPartialBytes: UInt64?
        /// Output offset of the length field of a chunk being written piece by piece.
        var streamedHeaderOffset: UInt64?
        var terminated = false

        init(sink: any ByteSink, keepPartial: Bool) {
            self.sink = sink
            self.keepPartial = keepPartial
            writer = StateStreamWriter(sink: sink)
        }

        mutating func apply(_ event: StreamEvent, reader: borrowing StateStreamReader) throws {
            switch event {
            case .chunkStart(let chunk):
                if Int(chunk.length) > reader.bufferCapacity {
                    streamedHeaderOffset = writer.framedBytes
                    try writer.writeChunkHeader(length: chunk.length)
                }
            case .payload(let bytes):
                let streamed = streamedHeaderOffset != nil
                try bytes.withUnsafeBytes { body in
                    Result { () throws(OutputError) in
                        if streamed { try writer.writeChunkBody(body) } else { try writer.writeChunk(body) }
                    }
                }.get()
            case .chunkEnd:
                streamedHeaderOffset = nil
            case .terminator:
                terminated = true
            case .problem(.truncatedChunk(let chunk, let present)):
                let keep = keepPartial && present > 0
                try cutOff(
                    chunk, present: present, keep: keep, streamedHeaderOffset: streamedHeaderOffset, sink: sink,
                    writer: &writer, presentBytes: reader.unconsumedBytes)
                if keep { keptPartialBytes = present }
                changes.append(keep ? .keptPartialChunk(chunk, presentBytes: present) : .droppedPartialChunk(chunk, presentBytes: present))
            case .problem(let problem):
                if let change = change(for: problem) { changes.append(change) }
            }
        }

        /// Ends the output (with a terminator, added if the input had none).
        mutating func finish(_ analysis: StreamAnalysis) throws -> Report {
            var report = Report(
                input: analysis, changes: changes,
                outputChunks: analysis.chunkCount + (keptPartialBytes == nil ? 0 : 1),
                outputPayloadBytes: analysis.payloadBytes + (keptPartialBytes ?? 0))
            if !terminated {
                report.changes.append(.addedTerminator(outputOffset: report.outputFramedBytes - UInt64(StateStreamFormat.lengthFieldSize)))
            }
            try writer.finish()
            return report
        }
    }

    /// Ends the output at a truncated chunk: its present bytes become a last,
    /// shorter chunk when kept, else the chunk is left out; a chunk already
    /// being written piece by piece gets its length field rewritten or cut off.
    private static func cutOff(
        _ chunk: Chunk, present: UInt64, keep: Bool, streamedHeaderOffset: UInt64?, sink: any ByteSink,
        writer: inout StateStreamWriter, presentBytes: ArraySlice<UInt8>
    ) throws(OutputError) {
        if let headerOffset = streamedHeaderOffset {
            guard let file = sink as? OutputFile, file.isRewindable else { throw OutputError.cannotRewind }
            if keep {
                try file.overwrite(at: headerOffset, with: StateStreamWriter.lengthField(UInt32(present)))
            } else {
                try file.truncate(to: headerOffset)
            }
        } else if keep {
            try presentBytes.prefix(Int(present)).withUnsafeBytes { body in
                Result { () throws(OutputError) in try writer.writeChunk(body) }
            }.get()
        }
    }

    /// What repairing past `problem` changes, if anything (truncated chunks aside).
    private static func change(for problem: StreamProblem) -> Change? {
        switch problem {
        case .truncatedLength(let offset, let present): return .droppedPartialLength(at: offset, presentBytes: present)
        case .trailingData(let offset, let count): return .droppedTrailingData(at: offset, byteCount: count)
        case .compressionError(let failure): return .stoppedAtCompressionError(failure)
        case .truncatedChunk, .missingTerminator, .oversizedChunk: return nil
        }
    }
}
