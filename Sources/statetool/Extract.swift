import ArgumentParser
import FoundationEssentials
import MigrationFile
import StateStream
import StatetoolKit

struct Extract: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the back-end state streams held in a QEMU migration file.",
        discussion: """
            Reads the migration file and writes the chunk-framed state stream of \
            each vhost-user device: the vhost-user-fs-backend subsection of a vhost-user-fs section, \
            and virtio-net-device/backend inside a virtio-net section. The bytes are those of the \
            file, from the first chunk length through the zero-length terminator (with --payload, \
            the chunk bodies only), so validate, inspect, diff and replay take the output as it is.

            Without -o each device's state goes to its own file in --directory, named after the \
            device: NAME.state (NAME.payload with --payload), with / in the name turned into _. \
            With -o FILE (or - for standard output) there must be one device, or --device must pick \
            one: by its name (idstr, e.g. 0000:00:01.0/vhost-user-fs) or its section id.

            For each state it reports the offsets of the subsection header and of the stream, its \
            size, chunks and payload, whether it is valid (the problem kinds of validate), and \
            whether its size matches the JSON description. The report goes to standard output, or \
            to standard error when the state does. With --json, the report is the object migration \
            ls --json prints, each back-end state naming its output.

            A broken embedded stream (a truncated file, say) is written only with --salvage: its \
            complete chunks, without a terminator, which repair can close. Files are written to a \
            temporary file and renamed into place only on success.

            Exit status: 0 every state written and valid, 1 a problem in the file or a state, or no \
            state found, 2 unreadable input or unwritable output, 64 usage error (including -o \
            with several devices and no --device).

            \(MigrationReadingOptions.discussion) With --json, the report's reading object says the \
            same: path (tail or walk), reason, placedSections, resumedAt, bytesRead.
            """
    )

    @Option(
        name: .shortAndLong,
        help: ArgumentHelp("Write the one state here: a file, or - for standard output.", valueName: "file"))
    var output: String?

    @Option(help: ArgumentHelp("Without -o, the folder for one file per device.", valueName: "dir"))
    var directory = "."

    @Option(help: ArgumentHelp("Extract only this device: its name (idstr) or section id.", valueName: "id"))
    var device: String?

    @Flag(help: "Write the payload (the chunk bodies) instead of the framed stream.")
    var payload = false

    @Flag(help: "For a broken embedded stream, write its complete chunks instead of nothing.")
    var salvage = false

    @OptionGroup var format: JSONOption

    @OptionGroup var reading: MigrationReadingOptions

    @OptionGroup var progress: ProgressOption

    @Argument(help: ArgumentHelp("The migration file or libvirt save image: a file, or - for standard input. Raw or compressed (zstd, gzip, bzip2, xz).", valueName: "file"))
    var file: String

    func validate() throws {
        if format.json && output == "-" { throw ValidationError("--json prints on standard output: write the state with -o FILE.") }
        if output != nil && directory != "." { throw ValidationError("--directory is for one file per device; -o names the one output.") }
    }

    func run() throws {
        var extraction = StateExtraction(try CommandSupport.open(file), to: output.map { .file($0) } ?? .directory(directory))
        extraction.form = payload ? .payload : .stream
        extraction.device = device
        extraction.salvage = salvage
        extraction.strategy = reading.strategy
        var progress = ProgressLine(for: extraction.input.stream, quiet: self.progress.quiet)
        let result: StateExtraction.Result
        do {
            defer { progress.clear() }
            result = try extraction.extract { progress.update(bytes: $0) }
        } catch {
            if case .severalDevices = error { throw CommandFailure(.usage, "\(file): error: \(error)") }
            if case .output(let output) = error { throw CommandSupport.fail(output, file: file) }
            throw CommandSupport.fail(error, file: file)
        }
        try report(result)
    }

    private func report(_ result: StateExtraction.Result) throws {
        let report = result.report
        if format.json {
            try StandardOutput.printJSON(report, schema: "extract")
        } else if !report.lacksMagic {
            try StandardOutput.printReport(report.stateLines, dataOnStandardOutput: output == "-")
        }
        reading.report(report.survey.reading, file: file)
        report.reportProblems()
        for state in result.extracted where !state.isComplete {
            StandardError.write(
                salvage
                    ? "\(file): \(state.location.section.name): salvaged \(state.completeChunks) complete chunks (\(state.completeBytes) bytes) into \(state.path), without a terminator"
                    : "\(file): \(state.location.section.name): broken back-end state not written: --salvage writes its complete chunks")
        }
        guard !result.extracted.isEmpty else {
            // A file without the magic has said what it is not; no state was to be found.
            if report.lacksMagic { throw CommandFailure(.invalid) }
            StandardError.write(device.map { "\(file): error: no back-end state of device \($0)" } ?? "\(file): error: no vhost-user back-end state in this file")
            throw CommandFailure(.invalid)
        }
        if !report.valid { throw CommandFailure(.invalid) }
    }
}
