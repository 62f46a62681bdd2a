import FoundationEssentials
import StateStream

/// What `inspect` finds in a state stream: its framing, its problems, and
/// what a registered back-end makes of its payload. Its `Encodable` form is
/// the `inspect --json` object.
public struct StreamInspection: Encodable, Sendable {
    /// The input as the user named it.
    public let file: String
    /// The stream's framing, sizes, digest and problems.
    public let analysis: StreamAnalysis
    /// Whether the stream is valid (with `strict`, warnings make it invalid).
    public let valid: Bool
    /// What a back-end made of the payload; `nil` for a payload no registered
    /// back-end takes, and for a broken stream.
    public var payload: RecognizedPayload?

    /// The inspection of `file`, analysed as `analysis`.
    public init(file: String, analysis: StreamAnalysis, strict: Bool) {
        self.file = file
        self.analysis = analysis
        self.valid = analysis.isValid(strict: strict)
    }

    /// Reads `input` (named `file`) to its end: its framing, sizes, SHA-256
    /// and problems, and, for a valid stream, what a registered back-end makes
    /// of its payload, decoded as it streams by.
    ///
    /// - Parameters:
    ///   - input: The stream to read.
    ///   - file: The input as the user named it, for the result.
    ///   - maximumChunkLength: Chunks longer draw an `oversized-chunk` warning.
    ///   - strict: Whether warnings make the stream invalid.
    ///   - onChunk: Called with every complete chunk, in order.
    ///   - onProgress: Called with the bytes of the input read so far.
    /// - Throws: `InputError` when the input cannot be read.
    public static func inspect(
        _ input: StateStreamInput, file: String,
        maximumChunkLength: UInt32 = StateStreamFormat.qemuMaximumChunkLength, strict: Bool = false,
        onChunk: (Chunk) -> Void = { _ in }, onProgress: (UInt64) -> Void = { _ in }
    ) throws -> StreamInspection {
        var recognition = PayloadRecognition()
        let analysis = try StreamAnalysis.analyze(input, maximumChunkLength: maximumChunkLength, computeDigest: true) { reader, event in
            switch event {
            case .chunkEnd(let chunk): onChunk(chunk)
            case .payload(let bytes): recognition.feed(bytes)
            default: break
            }
            onProgress(input.bytesConsumed(by: reader))
        }
        var inspection = StreamInspection(file: file, analysis: analysis, strict: strict)
        if analysis.error == nil { inspection.payload = recognition.finish() }
        return inspection
    }

    /// Writes the `inspect --json` object, following the schema `schema`, as
    /// `encoder` (sorted keys) encodes it, piece by piece: a back-end state
    /// that can be written so (``StreamedJSONObject``, a virtiofsd state's
    /// inodes and handles) is formatted a batch at a time and never held
    /// whole.
    public func writeJSON(schema: String, encoder: JSONEncoder, write: ([UInt8]) throws -> Void) throws {
        // The back-end's key must come last among the sorted keys for its object to be appended.
        guard let payload, case .success(let state) = payload.result, let streamed = state as? any StreamedJSONObject,
            payload.backEnd > Key.validPrefix.rawValue
        else {
            try write(Array(try encoder.encode(SchemaDocument(self, schema: schema))))
            return
        }
        var head = self
        head.payload = nil
        var bytes = Array(try encoder.encode(SchemaDocument(head, schema: schema)))
        guard bytes.last == UInt8(ascii: "}") else { throw EncodingError.invalidValue(self, .init(codingPath: [], debugDescription: "not an object")) }
        bytes.removeLast()
        try write(bytes)
        try write(Array(",".utf8) + Array(try encoder.encode(payload.backEnd)) + Array(":".utf8))
        try streamed.writeJSON(format: { Array(try encoder.encode($0)) }, write: write)
        try write([UInt8(ascii: "}")])
    }

    private enum Key: String, CodingKey {
        case file, compression, valid, chunks, payloadBytes, framedBytes, compressedBytes, framingOverhead
        case payloadSHA256, chunkSizes, chunkHistogram, terminatorOffset, problems, omittedProblems, validPrefix
    }

    /// A back-end's key: its name, or its name and `Error` when its payload does not decode.
    private struct BackEndKey: CodingKey {
        let stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// `{min, median, max}`, each `null` for a stream without chunks.
    private struct Sizes: Encodable {
        let min: UInt32?
        let median: UInt32?
        let max: UInt32?

        private enum CodingKeys: String, CodingKey { case min, median, max }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(min, forKey: .min)
            try container.encode(median, forKey: .median)
            try container.encode(max, forKey: .max)
        }
    }

    private struct Prefix: Encodable {
        let bytes: UInt64
        let chunks: Int
        let payloadBytes: UInt64
    }

    /// Encodes the `inspect --json` object.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        let sizes = analysis.chunkSizes
        try container.encode(file, forKey: .file)
        try container.encode(analysis.compression, forKey: .compression)
        try container.encode(valid, forKey: .valid)
        try container.encode(analysis.chunkCount, forKey: .chunks)
        try container.encode(analysis.payloadBytes, forKey: .payloadBytes)
        try container.encode(analysis.framedBytes, forKey: .framedBytes)
        try container.encode(analysis.compressedBytes, forKey: .compressedBytes)
        try container.encode(analysis.framingOverhead, forKey: .framingOverhead)
        try container.encode(analysis.payloadSHA256, forKey: .payloadSHA256)
        try container.encode(Sizes(min: sizes.minimum, median: sizes.median, max: sizes.maximum), forKey: .chunkSizes)
        try container.encode(sizes.histogram, forKey: .chunkHistogram)
        try container.encode(analysis.terminatorOffset, forKey: .terminatorOffset)
        try container.encode(analysis.problems.map { FindingRecord($0) }, forKey: .problems)
        try container.encode(analysis.omittedProblemCount, forKey: .omittedProblems)
        try container.encode(
            Prefix(bytes: analysis.validPrefixLength, chunks: analysis.chunkCount, payloadBytes: analysis.payloadBytes),
            forKey: .validPrefix)
        if let payload {
            var backEnd = encoder.container(keyedBy: BackEndKey.self)
            switch payload.result {
            case .success(let state): try backEnd.encode(state, forKey: BackEndKey(stringValue: payload.backEnd))
            case .failure(let failure): try backEnd.encode(failure.record, forKey: BackEndKey(stringValue: payload.backEnd + "Error"))
            }
        }
    }


}
