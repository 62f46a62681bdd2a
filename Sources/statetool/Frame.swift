import ArgumentParser
import StateStream

struct Frame: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Frame raw payload bytes into a valid state stream, as QEMU would write it.",
        discussion: """
            Every chunk holds --chunk-size payload bytes (QEMU's own reads are at most 1 MiB), the \
            last one fewer, then the zero-length terminator. An empty payload gives a stream that is \
            just the terminator.

            Exit status: 0 written, 2 input unreadable or output not writable, 64 usage error.
            """
    )

    @OptionGroup var output: OutputOptions
    @OptionGroup var chunkSize: ChunkSizeOption

    @OptionGroup var compression: StreamCompressionOptions

    @Argument(help: ArgumentHelp("The raw payload: a file, or - for standard input.", valueName: "payload"))
    var payload: String

    func run() throws {
        do {
            let source = try FileDescriptorSource(path: payload)
            let file = try output.open(protecting: [payload])
            let sink = try compression.sink(into: file)
            var progress = ProgressLine(enabled: !output.quiet, total: source.regularFileSize)
            defer { progress.clear() }
            _ = try StreamTransforms.frame(payload: source, chunkSize: chunkSize.bytes, to: sink) { bytes in
                progress.update(bytes: bytes)
            }
            try file.commit()
        } catch {
            throw CommandSupport.fail(error, file: payload)
        }
    }
}
