import ArgumentParser
import StateStream

/// `compress` and `decompress`: copy the framed stream exactly into a sink
/// while the reader checks it.
enum StreamCopy {
    static func run(
        stream: String, output: OutputOptions, force: Bool,
        sink makeSink: (OutputFile) throws(OutputError) -> any ByteSink
    ) throws {
        let input = try CommandSupport.openStream(stream)
        var progress = ProgressLine(for: input, quiet: output.quiet)
        defer { progress.clear() }
        do {
            let file = try output.open(protecting: [stream])
            let sink = try makeSink(file)
            let analysis = try StreamAnalysis.analyze(input, computeDigest: false, copyingFramedBytesTo: sink) { reader, _ in
                progress.update(bytes: input.bytesConsumed(by: reader))
            }
            try sink.finish()
            if analysis.error != nil {
                progress.clear()
                guard force else {
                    throw CommandSupport.refuse(analysis, file: stream, hint: "--force writes it as it is; statetool repair mends it")
                }
                CommandSupport.reportProblems(of: analysis, file: stream)
            }
            try file.commit()
        } catch {
            throw CommandSupport.fail(error, file: stream)
        }
    }
}
