import StateStream

extension StreamAnalysis {
    /// Analyses the stream at `path` (or standard input for `-`) with the
    /// command line's options, showing progress on a terminal.
    static func analyze(path: String, options: ReadingOptions, computeDigest: Bool) throws -> StreamAnalysis {
        let input = try CommandSupport.openStream(path)
        var progress = ProgressLine(for: input, quiet: options.quiet)
        defer { progress.clear() }
        return try analyze(input, maximumChunkLength: options.chunkLimit, computeDigest: computeDigest) { reader, _ in
            progress.update(bytes: input.bytesConsumed(by: reader))
        }
    }

    /// One line on the valid prefix of a broken stream.
    var validPrefixSummary: String {
        "valid prefix: \(validPrefixLength) bytes, \(chunkCount) complete \(chunkCount == 1 ? "chunk" : "chunks"), \(payloadBytes) payload bytes"
    }
}
