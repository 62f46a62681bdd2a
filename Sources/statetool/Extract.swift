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
        let input = try CommandSupport.open(file)
        let survey: MigrationFileSurvey
        var outputs: [StateOutput] = []
        var current: StateOutput?
        do {
            survey = try MigrationFileSurvey.survey(input.stream, strategy: reading.strategy, quiet: progress.quiet) { event in
                switch event {
                case .backEndStateStart(let location):
                    current = nil
                    guard device.map(location.section.matches) ?? true else { return }
                    if output != nil, let first = outputs.first {
                        throw SeveralDevices(first: first.location.section.name, second: location.section.name)
                    }
                    current = try StateOutput(location: location, path: path(for: location), framed: !payload, protecting: file)
                    outputs.append(current!)
                case .backEndState(let streamEvent):
                    try current?.write(streamEvent)
                default:
                    break
                }
            }
            for output in outputs where output.isComplete || salvage {
                try output.commit()
            }
        } catch let several as SeveralDevices {
            throw CommandFailure(.usage,
                "\(file): error: several devices hold back-end state (\(several.first), \(several.second)): pick one with --device, or leave out -o to write one file each")
        } catch {
            throw CommandSupport.fail(error, file: file)
        }
        try report(survey: survey, input: input, outputs: outputs)
    }

    private func path(for location: BackEndStateLocation) -> String {
        if let output { return output }
        let name = String(location.section.name.map { $0 == "/" ? "_" : $0 })
        return directory + "/" + name + (payload ? ".payload" : ".state")
    }

    private func report(survey: MigrationFileSurvey, input: Input, outputs: [StateOutput]) throws {
        var report = MigrationFileReport(file: file, input: input, survey: survey)
        for output in outputs where output.isComplete || salvage {
            report.outputs[output.location.section.id] = output.path
        }
        if format.json {
            try StandardOutput.printJSON(report, schema: "extract")
        } else if !report.lacksMagic {
            try StandardOutput.printReport(report.stateLines, dataOnStandardOutput: output == "-")
        }
        reading.report(survey.reading, file: file)
        report.reportProblems()
        for output in outputs where !output.isComplete {
            StandardError.write(
                salvage
                    ? "\(file): \(output.location.section.name): salvaged \(output.completeChunks) complete chunks (\(output.completeBytes) bytes) into \(output.path), without a terminator"
                    : "\(file): \(output.location.section.name): broken back-end state not written: --salvage writes its complete chunks")
        }
        guard !outputs.isEmpty else {
            // A file without the magic has said what it is not; no state was to be found.
            if report.lacksMagic { throw CommandFailure(.invalid) }
            StandardError.write(device.map { "\(file): error: no back-end state of device \($0)" } ?? "\(file): error: no vhost-user back-end state in this file")
            throw CommandFailure(.invalid)
        }
        if !report.valid { throw CommandFailure(.invalid) }
    }
}

/// `-o` names one output, and a second device holds a state too.
private struct SeveralDevices: Error {
    let first: String
    let second: String
}

/// One extracted state on its way to its output file.
private final class StateOutput {
    let location: BackEndStateLocation
    let path: String
    private let file: OutputFile
    private let sink: BufferedSink
    private var writer: StateStreamWriter?
    private(set) var isComplete = false
    /// Bytes and chunks written of the chunks read to their end.
    private(set) var completeBytes: UInt64 = 0
    private(set) var completeChunks = 0

    /// Opens `path` for the state at `location`, framed or payload only.
    init(location: BackEndStateLocation, path: String, framed: Bool, protecting input: String) throws(OutputError) {
        self.location = location
        self.path = path
        file = try OutputFile(path: path, protecting: [input])
        sink = BufferedSink(file)
        writer = framed ? StateStreamWriter(sink: sink) : nil
    }

    func write(_ event: StreamEvent) throws(OutputError) {
        switch event {
        case .chunkStart(let chunk):
            try writer?.writeChunkHeader(length: chunk.length)
        case .payload(let bytes):
            try bytes.withUnsafeBytes { buffer in
                Result { () throws(OutputError) in
                    if writer != nil { try writer!.writeChunkBody(buffer) } else { try sink.write(buffer) }
                }
            }.get()
        case .chunkEnd(let chunk):
            completeChunks += 1
            completeBytes += writer == nil ? UInt64(chunk.length) : chunk.framedLength
        case .terminator:
            if writer != nil { try writer!.finish() } else { try sink.finish() }
            isComplete = true
        case .problem:
            break
        }
    }

    /// Renames the output into place; a broken state is cut to its complete chunks first.
    func commit() throws(OutputError) {
        if !isComplete {
            try sink.finish()
            if file.bytesWritten > completeBytes { try file.truncate(to: completeBytes) }
        }
        try file.commit()
    }
}
