import ArgumentParser
import StateStream

/// Options every command that checks a stream takes.
struct ReadingOptions: ParsableArguments {
    @Option(
        name: .customLong("max-chunk"),
        help: ArgumentHelp(
            "Warn about chunks longer than this (oversized-chunk). Takes bytes or K/M/G suffixes.",
            valueName: "size"))
    var maximumChunkLength: ByteCount = ByteCount(bytes: UInt64(StateStreamFormat.qemuMaximumChunkLength))

    @Flag(help: "Treat warnings as errors (exit status 1).")
    var strict = false

    @Flag(name: .shortAndLong, help: "Show no progress, even on a terminal.")
    var quiet = false

    func validate() throws {
        guard maximumChunkLength.bytes > 0, maximumChunkLength.bytes <= UInt64(UInt32.max) else {
            throw ValidationError("--max-chunk must be between 1 byte and 4 GiB - 1.")
        }
    }

    var chunkLimit: UInt32 { UInt32(maximumChunkLength.bytes) }
}
