import ArgumentParser
import StateStream

struct Compress: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "zstd-compress a stream (with a content checksum), checking it on the way.",
        discussion: """
            The framed stream is compressed exactly as it is, so decompress gives back the same bytes. \
            A zstd input is recompressed. A broken stream is refused unless --force, which compresses \
            it unchanged, damage included.

            Exit status: 0 written, 1 broken input refused, 2 input unreadable or output not \
            writable, 64 usage error.
            """
    )

    @OptionGroup var output: OutputOptions
    @OptionGroup var compression: ZstdOptions

    @Flag(help: "Compress a broken stream as it is instead of refusing it.")
    var force = false

    @Argument(help: ArgumentHelp("The stream: a file, or - for standard input.", valueName: "stream"))
    var stream: String

    func run() throws {
        try StreamCopy.run(stream: stream, output: output, force: force) { file throws(OutputError) in
            try compression.compressor(into: file)
        }
    }
}
