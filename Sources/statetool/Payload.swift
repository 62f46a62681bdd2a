import ArgumentParser
import StateStream

struct Payload: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the payload of a stream: its chunk bodies, concatenated.",
        discussion: """
            The payload is what the back-end wrote into its pipe; for virtiofsd, one postcard-encoded \
            value. A broken stream is refused (exit status 1, no output file) unless --salvage, which \
            writes the payload of the complete chunks before the first error and says what was left out.

            Written to standard output, bytes go out as they are read: a broken stream shows only in \
            the exit status and on standard error.

            Exit status: 0 written, 1 broken input refused, 2 input unreadable or output not \
            writable, 64 usage error.
            """
    )

    @OptionGroup var output: OutputOptions

    @Flag(help: "For a broken stream, write the payload of its complete chunks instead of refusing it.")
    var salvage = false

    @Argument(help: ArgumentHelp("The stream: a file, or - for standard input. Raw or compressed (zstd, gzip, bzip2, xz).", valueName: "stream"))
    var stream: String

    func run() throws {
        let input = try CommandSupport.openStream(stream)
        var progress = ProgressLine(for: input, quiet: output.quiet)
        let analysis: StreamAnalysis
        let file: OutputFile
        do {
            file = try output.open(protecting: [stream])
            analysis = try StreamTransforms.extractPayload(of: input, to: file) { reader, _ in
                progress.update(bytes: input.bytesConsumed(by: reader))
            }
            progress.clear()
            if analysis.error != nil {
                guard salvage else {
                    throw CommandSupport.refuse(analysis, file: stream, hint: "--salvage writes the payload of its complete chunks")
                }
                if file.bytesWritten > analysis.payloadBytes { try file.truncate(to: analysis.payloadBytes) }
            }
            try file.commit()
        } catch {
            progress.clear()
            throw CommandSupport.fail(error, file: stream)
        }
        if let problem = analysis.error {
            StandardError.write(
                "\(stream): salvaged \(analysis.payloadBytes) payload bytes from \(analysis.chunkCount) complete \(analysis.chunkCount == 1 ? "chunk" : "chunks"); left out from offset \(analysis.validPrefixLength): \(problem)")
        }
    }
}
