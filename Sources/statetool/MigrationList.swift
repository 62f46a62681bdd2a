import ArgumentParser
import FoundationEssentials
import MigrationFile
import StateStream
import StatetoolKit

struct MigrationList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List the sections of a migration file and the back-end state inside it.",
        discussion: """
            Walks the file front to back (a file or - for standard input, raw or compressed with \
            zstd, gzip, bzip2 or xz; nothing seeks): the QEVM header, the configuration, every section with its id, name \
            (idstr), instance, version, file offset and size (all records of an iterative section \
            such as ram together), commands, the EOF marker and the JSON description. The RAM \
            section is parsed record by record; a device section ends at its footer; a \
            vhost-user back-end's state stream (vhost-user-fs-backend, virtio-net-device/backend) \
            is read by the state-stream reader and checked like validate does. Sizes are then \
            checked against the JSON description when the file has one. Offsets count bytes of \
            the decompressed file.

            A libvirt save image (virsh save, managedsave) is listed as it is: first a line for \
            libvirt's header (its version, format, was_running, the domain's name and UUID, the XML's \
            length and where the QEMU stream starts), then the stream inside, its offsets counting \
            bytes of the image decompressed, libvirt's header included. A header or XML that is not \
            what libvirt writes is refused with its kind (unfinished-save, unsupported-version, \
            bad-header, bad-xml, truncated-file, format-mismatch, unsupported-format), exit status 1.

            Problems go to standard error, FILE: SEVERITY: KIND at offset N: what is wrong. \
            Kinds: not-a-migration-file, unsupported-version, truncated-file, unknown-record-type, \
            unknown-section-id, bad-footer, unsupported, malformed-record, state-stream (with the \
            stream's own kind), description-mismatch, bad-description, trailing-data, \
            compression-error (errors); no-description (a warning).

            With --json, one JSON object; `statetool schema migration ls` prints its JSON Schema, \
            which names and describes every key, and the object's "schema" key names that schema.

            The virtio field of each virtio-pci device is checked as QEMU's virtio_load checks \
            it (see migration show): a virtqueue larger than the destination's queue-size \
            (--queue-size N) is a virtqueue-size error, QEMU 11.1 refuses such a file; without \
            --queue-size, a queue larger than QEMU's default 128 is a virtqueue-size warning. \
            With --json these are the report's virtioFindings.

            Exit status: 0 the file and its back-end states are valid, 1 a problem (an error), \
            2 unreadable, 64 usage error.
            """
    )

    @OptionGroup var queue: QueueSizeOption

    @OptionGroup var format: JSONOption

    @OptionGroup var progress: ProgressOption

    @Argument(help: ArgumentHelp("The migration file or libvirt save image: a file, or - for standard input. Raw or compressed (zstd, gzip, bzip2, xz).", valueName: "file"))
    var file: String

    func run() throws {
        let input = try CommandSupport.open(file)
        var progressLine = ProgressLine(for: input.stream, quiet: progress.quiet)
        let report: MigrationFileReport
        do {
            defer { progressLine.clear() }
            report = try MigrationFileReport.listing(file: file, input: input, queueSize: queue.queueSize) { event in
                if case .progress(let bytes) = event { progressLine.update(bytes: input.stream.compressedBytesRead ?? bytes) }
            }
        } catch {
            throw CommandSupport.fail(error, file: file)
        }
        let output = StandardOutput()
        if format.json {
            try output.write(Data(try JSONText.document(report, schema: "migration-ls").utf8))
            try output.write("\n")
        } else {
            try output.write(report.summaryLines + (report.lacksMagic ? "" : report.sectionTable + report.ramBlockLines + report.trailerLines + report.stateLines))
        }
        try output.flush()
        report.reportProblems()
        if !report.valid { throw CommandFailure(.invalid) }
    }
}
