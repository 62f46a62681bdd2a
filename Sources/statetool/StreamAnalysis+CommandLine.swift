import StateStream

extension StreamAnalysis {
    /// Analyses the stream at `path` (or standard input for `-`) with the
    /// command line's options, showing progress on a terminal.
    ///
    /// - Parameters:
    ///   - onChunk: Called with every complete chunk, in order.
    ///   - onPayload: Called with the payload, piece by piece.
    static func analyze(
        path: String,
        options: ReadingOptions,
        computeDigest: Bool,
        showProgress: Bool = true,
        onChunk: (Chunk) -> Void = { _ in },
        onPayload: (ArraySlice<UInt8>) -> Void = { _ in }
    ) throws -> StreamAnalysis {
        let input = try CommandSupport.openStream(path)
        var progress = ProgressLine(for: input, quiet: options.quiet || !showProgress)
        defer { progress.clear() }
        return try analyze(input, maximumChunkLength: options.chunkLimit, computeDigest: computeDigest) { reader, event in
            switch event {
            case .chunkEnd(let chunk): onChunk(chunk)
            case .payload(let bytes): onPayload(bytes)
            default: break
            }
            progress.update(bytes: input.bytesConsumed(by: reader))
        }
    }

    /// One line on the valid prefix of a broken stream.
    var validPrefixSummary: String {
        "valid prefix: \(validPrefixLength) bytes, \(chunkCount) complete \(chunkCount == 1 ? "chunk" : "chunks"), \(payloadBytes) payload bytes"
    }
}
