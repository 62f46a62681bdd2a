import ArgumentParser
import MigrationFile
import StateStream
import StatetoolKit

/// Options of the commands that check a stream: `validate`, `inspect`.
struct ReadingOptions: ParsableArguments {
    @Option(
        name: .customLong("max-chunk"),
        help: ArgumentHelp(
            "Warn about chunks longer than this (oversized-chunk). Takes bytes or K/M/G suffixes.",
            valueName: "size"))
    var maximumChunkLength: ByteCount = ByteCount(bytes: UInt64(StateStreamFormat.qemuMaximumChunkLength))

    @Flag(help: "Treat warnings as errors (exit status 1).")
    var strict = false

    @OptionGroup var progress: ProgressOption

    /// Whether to show no progress.
    var quiet: Bool { progress.quiet }

    func validate() throws {
        guard maximumChunkLength.bytes > 0, maximumChunkLength.bytes <= UInt64(UInt32.max) else {
            throw ValidationError("--max-chunk must be between 1 byte and 4 GiB - 1.")
        }
    }

    var chunkLimit: UInt32 { UInt32(maximumChunkLength.bytes) }
}

/// `-q/--quiet`, for every command that shows progress on a terminal.
struct ProgressOption: ParsableArguments {
    @Flag(name: .shortAndLong, help: "Show no progress, even on a terminal.")
    var quiet = false
}

/// Options of the commands that write: where to, and whether to show progress.
struct OutputOptions: ParsableArguments {
    @Option(
        name: .shortAndLong,
        help: ArgumentHelp(
            "Where to write: a file (written to a temporary file and renamed into place only on success), or - for standard output.",
            valueName: "file"))
    var output = "-"

    @OptionGroup var progress: ProgressOption

    /// Whether to show no progress.
    var quiet: Bool { progress.quiet }

    /// Opens the output, refusing to write over `inputs` or binary to a terminal.
    func open(protecting inputs: [String]) throws(OutputError) -> OutputFile {
        try OutputFile(path: output, protecting: inputs)
    }
}

/// zstd settings for the commands that compress.
struct ZstdOptions: ParsableArguments {
    @Option(help: ArgumentHelp("zstd compression level.", valueName: "level"))
    var level: Int32 = ZstdCompressingSink.defaultLevel

    @Option(help: ArgumentHelp("zstd worker threads (0: compress on the calling thread, as zstd -T1).", valueName: "count"))
    var threads: Int32 = 0

    func validate() throws {
        guard ZstdCompressingSink.levels.contains(level) else {
            throw ValidationError("--level must be between \(ZstdCompressingSink.levels.lowerBound) and \(ZstdCompressingSink.levels.upperBound).")
        }
        guard (0...256).contains(threads) else { throw ValidationError("--threads must be between 0 and 256.") }
    }

    /// A compressor writing into `output`.
    func compressor(into output: any ByteSink) throws(OutputError) -> ZstdCompressingSink {
        try ZstdCompressingSink(output, level: level, threads: threads)
    }
}

/// `--zstd` and its settings, for the commands that write a stream.
struct StreamCompressionOptions: ParsableArguments {
    @Flag(help: "Write the stream zstd-compressed (see --level and --threads).")
    var zstd = false

    @OptionGroup var settings: ZstdOptions

    /// The compression the options ask for.
    var compression: OutputCompression { zstd ? .zstd(level: settings.level, threads: settings.threads) : .none }

    /// Where the stream goes: with --zstd a compressor writing into `file`,
    /// else `file` itself through a buffer.
    func sink(into file: OutputFile) throws(OutputError) -> any ByteSink {
        try compression.sink(into: file)
    }
}

/// `--chunk-size` for the commands that frame a payload.
struct ChunkSizeOption: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Payload bytes per chunk (the last chunk may be shorter), up to 16M. Takes bytes or K/M/G suffixes.",
            valueName: "size"))
    var chunkSize: ByteCount = ByteCount(bytes: UInt64(StateStreamFormat.qemuMaximumChunkLength))

    func validate() throws {
        guard chunkSize.bytes > 0, chunkSize.bytes <= UInt64(PayloadFramer.maximumChunkSize) else {
            throw ValidationError("--chunk-size must be between 1 byte and 16M.")
        }
    }

    var bytes: Int { Int(chunkSize.bytes) }
}

/// `--json`, for the commands that report.
struct JSONOption: ParsableArguments {
    @Flag(help: "Print one JSON object instead of text.")
    var json = false
}

/// The destination's virtqueue size the virtio checks use: `--queue-size N`
/// (`migration ls`, `migration show`).
struct QueueSizeOption: ParsableArguments {
    @Option(help: ArgumentHelp("Check virtqueues against this destination queue-size; without it, against QEMU's default 128, as warnings.", valueName: "n"))
    var queueSize: UInt32?

    func validate() throws {
        if queueSize == 0 { throw ValidationError("--queue-size must be at least 1.") }
    }
}

/// How the commands that take a migration file read it: `--full-walk`, `-v`.
struct MigrationReadingOptions: ParsableArguments {
    @Flag(help: "Read a migration file front to back, every byte, instead of placing its device sections from its end.")
    var fullWalk = false

    @Flag(name: .shortAndLong, help: "Say more: how a migration file was read (from its end, or front to back and why) and how many bytes that took; where a command lists changes, every one.")
    var verbose = false

    /// How a migration file is read, for the commands' discussions.
    static let discussion = """
        A regular, uncompressed migration file (or raw save image) is read from its end: the JSON \
        description after the EOF marker places the device sections, each is checked where it \
        is placed (its header, its footer, a footer before the first, a vhost-user-fs state's \
        chunk lengths), and only they, the file's header and its configuration are read, however \
        large the guest's RAM. Where anything does not check out, and for pipes and compressed \
        files, the file is read front to back; --full-walk always does. Both give the same bytes. \
        Damage in what is not read (the RAM) is not seen from the end: migration ls and \
        --full-walk read every byte. -v says which path was taken and how many bytes were read.
        """

    /// The strategy `--full-walk` asks for.
    var strategy: ReadingStrategy { fullWalk ? .fullWalk : .placeFromEnd }

    /// With `-v`, says on standard error how `file` was read.
    func report(_ reading: MigrationReading?, file: String) {
        guard verbose, let reading else { return }
        StandardError.write("\(file): \(reading.summary)")
    }
}
