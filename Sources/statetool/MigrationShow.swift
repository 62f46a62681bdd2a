import ArgumentParser
import FoundationEssentials
import MigrationFile
import StateStream
import StatetoolKit

struct MigrationShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Decode every device section of a migration file through its JSON description.",
        discussion: """
            Decodes each device section's fields as QEMU's scripts/analyze-migration.py does, with \
            its names and nesting: fields by name, arrays (from array_len, from entries with an \
            index, and from entries sharing a name, as around a nullptr), struct fields, subsections \
            under their names, big-endian integers of every width (int32 le too), bool, nullptr, \
            capability, and any other type as its bytes. Each field is shown with its file offset. \
            The configuration section (machine type, page size, capabilities) comes first.

            The virtio field of a virtio-pci device (QEMU's virtio_save) is decoded too: the PCI \
            config space and MSI-X state, device status, features, the device config (for \
            vhost-user-fs its tag and request queue count), each virtqueue's size, descriptor \
            address, last_avail_idx and vector, and the virtio/ subsections. It is checked as \
            QEMU's virtio_load checks it, each finding with its offset: virtqueue-size (a queue \
            larger than the destination's queue-size, --queue-size, QEMU 11.1 refuses it; without \
            --queue-size, against QEMU's default 128 and as a warning), virtqueue-address, \
            virtqueue-count, queue-selector, msix-vector, virtio-broken. With --used-rings, each \
            queue's used index is read from the guest's RAM in the file (the u16 at its used ring \
            address + 2, placed in the main RAM block by the x86 q35 and i440fx layouts; a second \
            pass over the RAM pages of the regular, uncompressed file, or two bytes read in place \
            in a mapped-ram one) and virtqueue-in-use reports a last_avail_idx more than the \
            queue's size ahead of it, which QEMU's load refuses.

            Text output: one block per device, one line per value, aligned; byte strings longer \
            than 32 bytes are shortened (--full shows them whole). With --json, one JSON object \
            (statetool schema migration show): integers exact, bools, byte strings as hex, a \
            vhost-user back-end's state stream as null (extract writes it). --description prints \
            the JSON description itself, as the file holds it.

            Problems go to standard error, FILE: SEVERITY: KIND at offset N: what is wrong: the \
            kinds of migration ls, and field-truncated, missing-subsection, subsection-mismatch, \
            bad-field-value, unread-section-bytes, too-many-values (errors), undescribed-section \
            (a warning), and the virtio kinds above. What decodes before a problem is still shown.

            Exit status: 0 everything decodes and no check fails, 1 a problem (an error), 2 \
            unreadable (or, with --used-rings, not a regular uncompressed file), 64 usage error.

            \(MigrationReadingOptions.discussion)
            """
    )

    @Option(help: ArgumentHelp("Show only this device: its name (idstr) or section id.", valueName: "id"))
    var device: String?

    @OptionGroup var queue: QueueSizeOption

    @Flag(help: "Also read each virtqueue's used index from the guest's RAM in the file (a second pass over its RAM: the regular, uncompressed file) and check last_avail_idx against it, as QEMU's load does (virtqueue-in-use).")
    var usedRings = false

    @Flag(help: "Show byte strings whole instead of their first 32 bytes.")
    var full = false

    @Flag(help: "Print the JSON description the file holds instead of the decoded sections.")
    var description = false

    @OptionGroup var format: JSONOption

    @OptionGroup var reading: MigrationReadingOptions

    @OptionGroup var progress: ProgressOption

    @Argument(help: ArgumentHelp("The migration file or libvirt save image: a file, or - for standard input. Raw or compressed (zstd, gzip, bzip2, xz).", valueName: "file"))
    var file: String

    func validate() throws {
        if description && (format.json || device != nil || full) {
            throw ValidationError("--description prints the description as the file holds it: no --json, --device or --full.")
        }
    }

    func run() throws {
        let input = try CommandSupport.open(file)
        if description {
            try printDescription(of: input)
            return
        }
        var progressLine = ProgressLine(for: input.stream, quiet: progress.quiet)
        let report: MigrationShowReport
        do {
            defer { progressLine.clear() }
            report = try MigrationShowReport(
                file: file, input: input, device: device, queueSize: queue.queueSize, strategy: reading.strategy, readsUsedRings: usedRings
            ) { event in
                if case .progress(let bytes) = event { progressLine.update(bytes: input.stream.compressedBytesRead ?? bytes) }
            }
        } catch let failure as UsedRingIndexes.Failure {
            throw CommandFailure(.unreadable, "\(file): error: \(failure)")
        } catch {
            throw CommandSupport.fail(error, file: file)
        }
        reading.report(report.survey.reading, file: file)
        if let device, report.devices.isEmpty {
            throw CommandFailure(.invalid, "\(file): error: no device section \(device)")
        }
        let output = StandardOutput()
        if format.json {
            try output.write(Data(try JSONText.document(report, schema: "migration-show").utf8))
            try output.write("\n")
        } else {
            try output.write(report.text(full: full))
        }
        try output.flush()
        for finding in report.findings {
            StandardError.write("\(file): \(finding.severity.rawValue): \(finding)")
        }
        if !report.valid { throw CommandFailure(.invalid) }
    }

    /// Prints the description's text, or fails when the file has none.
    private func printDescription(of input: Input) throws {
        var text: [UInt8]?
        let survey: MigrationFileSurvey
        do {
            let reader = MigrationFileReader(input: input.stream, strategy: reading.strategy, keepsSectionBodies: true)
            survey = try MigrationFileSurvey.survey(reader) { event in
                if case .descriptionText(let json, _) = event { text = json }
            }
        } catch {
            throw CommandFailure.init(.unreadable, "\(file): error: \(error)")
        }
        reading.report(survey.reading, file: file)
        guard let text else {
            for problem in survey.problems { StandardError.write("\(file): \(problem.severity.rawValue): \(problem)") }
            throw CommandFailure(.invalid, "\(file): error: the file holds no JSON description")
        }
        let output = StandardOutput()
        try output.write(Data(text))
        try output.write("\n")
        try output.flush()
    }
}
