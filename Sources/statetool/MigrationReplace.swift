import ArgumentParser
import FoundationEssentials
import MigrationFile
import StateStream
import StatetoolKit

struct MigrationReplace: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replace",
        abstract: "Copy a migration file with one device's back-end state replaced.",
        discussion: """
            Writes a copy of FILE in which the back-end state of one device (the \
            vhost-user-fs-backend subsection of a vhost-user-fs section, or virtio-net-device/backend \
            inside a virtio-net section) is the state stream STREAM, or with --bare-state the bare \
            payload STREAM framed in --chunk-size chunks. Every other byte is copied as it is, except \
            the JSON description at the end, whose sizes are updated so that they stay true: the \
            back-end field's size (for virtio-net, the size of the virtio field that holds the \
            subsection) and the record's length. Replacing a state by itself gives back FILE byte \
            for byte.

            FILE is raw or compressed (zstd, gzip, bzip2, xz), a file or - for standard input; it \
            is read once, with bounded memory. From a regular uncompressed file into a file, the \
            untouched ranges are copied inside the kernel (copy_file_range), holes kept, and FILE's \
            device sections are placed from its end, so what lies before them is copied without \
            being read; into standard output or a compressor every byte passes through, and FILE \
            is read front to back. A broken FILE or STREAM is refused. \
            Before a file output is put in place it is read back as FILE was read (from its end, \
            when what lies before the device sections is the kernel's copy of FILE's bytes; else \
            every byte, like migration ls): it must have no problem, every size the JSON \
            description gives must match, and the device must hold exactly the new state. Standard output cannot be read back: there the input \
            and STREAM are checked as they are copied.

            --device picks the device by its name (idstr) or section id; without it the file must \
            hold one back-end state.

            With --json, one JSON object; `statetool schema migration replace` prints its JSON Schema, \
            which names and describes every key, and the object's "schema" key names that schema.

            \(MigrationReadingOptions.discussion)

            Exit status: 0 written, 1 FILE holds no such state, several and no --device, or FILE or \
            STREAM is broken, 2 unreadable input or unwritable output, 64 usage error.
            """
    )

    @Option(help: ArgumentHelp("The new state: a state stream (or with --bare-state a bare payload); a file or -.", valueName: "stream"))
    var state: String

    @Flag(help: "--state names a bare payload, not a state stream: frame it in --chunk-size chunks.")
    var bareState = false

    @OptionGroup var chunkSize: ChunkSizeOption

    @Option(help: ArgumentHelp("The device whose state to replace: its name (idstr) or section id.", valueName: "id"))
    var device: String?

    @OptionGroup var output: OutputOptions
    @OptionGroup var compression: StreamCompressionOptions

    @OptionGroup var format: JSONOption

    @OptionGroup var reading: MigrationReadingOptions

    @Argument(help: ArgumentHelp("The migration file or libvirt save image: a file, or - for standard input. Raw or compressed (zstd, gzip, bzip2, xz).", valueName: "file"))
    var file: String

    func validate() throws {
        if format.json && output.output == "-" { throw ValidationError("--json prints on standard output: write the file with -o FILE.") }
        if file == "-" && state == "-" { throw ValidationError("FILE and --state cannot both be standard input.") }
    }

    func run() throws {
        let input = try CommandSupport.open(file)
        let result: MigrationFileRewrite.Result
        do {
            let replacement: ReplacementState
            if bareState {
                replacement = .payload(try FileDescriptorSource(path: state), chunkSize: chunkSize.bytes)
            } else {
                replacement = .stream(try CommandSupport.openStream(state))
            }
            let outputFile = try output.open(protecting: [file, state])
            var progress = ProgressLine(for: input.stream, quiet: output.quiet)
            defer { progress.clear() }
            let rewrite = MigrationFileRewrite(input, device: device, compression: compression.compression, strategy: reading.strategy)
            result = try rewrite.write(to: outputFile, with: replacement) { progress.update(bytes: $0) }
        } catch let failure as StateReplacement.Failure {
            throw CommandFailure(.invalid, "\(file): error: \(failure)")
        } catch let failure as MigrationFileRewrite.Failure {
            throw CommandFailure(.usage, "\(file): error: \(failure)")
        } catch {
            throw CommandSupport.fail(error, file: file)
        }
        reading.report(result.summary.reading, file: file)
        if format.json {
            try StandardOutput.printJSON(MigrationRewriteReport(file: file, output: output.output, result: result), schema: "migration-replace")
        } else {
            try StandardOutput.printReport(result.describe(file: file), dataOnStandardOutput: output.output == "-")
        }
    }
}
