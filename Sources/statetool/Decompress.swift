import ArgumentParser
import StateStream

struct Decompress: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a stream uncompressed, checking it on the way.",
        discussion: """
            The zstd layer is removed; the framed stream comes out exactly as it was compressed. A raw \
            input is copied as it is. A broken stream is refused unless --force, which writes whatever \
            could be decoded.

            Exit status: 0 written, 1 broken input refused, 2 input unreadable or output not \
            writable, 64 usage error.
            """
    )

    @OptionGroup var output: OutputOptions

    @Flag(help: "Write a broken stream as far as it decodes instead of refusing it.")
    var force = false

    @Argument(help: ArgumentHelp("The stream: a file, or - for standard input.", valueName: "stream"))
    var stream: String

    func run() throws {
        try StreamCopy.run(stream: stream, output: output, force: force) { file throws(OutputError) in file }
    }
}
