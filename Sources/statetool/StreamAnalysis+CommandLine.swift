import StateStream

extension StreamAnalysis {
    /// Analyses the stream at `path` (or standard input for `-`) with the
    /// command line's options, showing progress on a terminal.
    ///
    /// - Parameter onChunk: Called with every complete chunk, in order.
    static func analyze(
        path: String,
        options: ReadingOptions,
        computeDigest: Bool,
        showProgress: Bool = true,
        onChunk: (Chunk) -> Void = { _ in }
    ) throws -> StreamAnalysis {
        let input = try StateStreamInput(path: path)
        var progress = ProgressLine(for: input, quiet: options.quiet || !showProgress)
        defer { progress.clear() }
        return try analyze(input, maximumChunkLength: options.chunkLimit, computeDigest: computeDigest) { reader, event in
            if case .chunkEnd(let chunk) = event { onChunk(chunk) }
            progress.update(bytes: input.bytesConsumed(by: reader))
        }
    }

    /// One line on the valid prefix of a broken stream.
    var validPrefixSummary: String {
        "valid prefix: \(validPrefixLength) bytes, \(chunkCount) complete \(chunkCount == 1 ? "chunk" : "chunks"), \(payloadBytes) payload bytes"
    }
}
