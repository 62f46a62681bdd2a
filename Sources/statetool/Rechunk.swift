import ArgumentParser
import StateStream

struct Rechunk: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Frame a stream's payload anew with another chunk size.",
        discussion: """
            The payload stays byte for byte the same; only the chunk boundaries move (they carry no \
            meaning: QEMU cuts wherever a pipe read returned). A broken stream is refused: repair it \
            first.

            Exit status: 0 written, 1 broken input refused, 2 input unreadable or output not \
            writable, 64 usage error.
            """
    )

    @OptionGroup var output: OutputOptions
    @OptionGroup var chunkSize: ChunkSizeOption

    @OptionGroup var compression: StreamCompressionOptions

    @Argument(help: ArgumentHelp("The stream: a file, or - for standard input. Raw or compressed (zstd, gzip, bzip2, xz).", valueName: "stream"))
    var stream: String

    func run() throws {
        let input = try CommandSupport.openStream(stream)
        var progress = ProgressLine(for: input, quiet: output.quiet)
        defer { progress.clear() }
        do {
            let file = try output.open(protecting: [stream])
            let sink = try compression.sink(into: file)
            let analysis = try StreamTransforms.rechunk(input, chunkSize: chunkSize.bytes, to: sink) { reader, _ in
                progress.update(bytes: input.bytesConsumed(by: reader))
            }
            guard analysis.error == nil else {
                progress.clear()
                throw CommandSupport.refuse(analysis, file: stream, hint: "run statetool repair first")
            }
            try file.commit()
        } catch {
            throw CommandSupport.fail(error, file: stream)
        }
    }
}
