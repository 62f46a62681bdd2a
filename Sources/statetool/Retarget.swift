import ArgumentParser
import FoundationEssentials
import MigrationFile
import StateStream
import StatetoolKit
import VirtiofsdState

struct Retarget: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Change a virtiofsd state so that a destination's shared directory takes it.",
        discussion: """
            For a restore that cannot succeed as it is: the destination's shared directory DIR no \
            longer matches the state (files deleted or moved since the VM was saved, a copy that \
            lacks a subtree, a copy on another file system). retarget changes as little as possible, \
            says exactly what it changed, and writes OUT of the same kind as STATE: a state stream \
            for a stream, a payload for a payload, and for a migration file a complete migration \
            file in which only that device's back-end state (and the sizes of the JSON description) \
            differ, as migration replace writes it.

            In order: --handles-to-paths SOURCE_DIR turns every inode located by file handle \
            (--migration-mode=file-handles) into a path inode. A file handle names a file of a file \
            system, not a path: restored onto a copy of the share on the same file system, such a \
            state serves the guest the original files (preflight reports them resolving outside the \
            share). SOURCE_DIR is the directory the state was saved from, while it still exists: each \
            handle is opened there (O_PATH, as virtiofsd opens it; CAP_DAC_READ_SEARCH needed), the \
            file found must lie under SOURCE_DIR (its name, less SOURCE_DIR's, opens beneath it as the \
            same device and inode), and the inode then names as parent the deepest inode of the state \
            at a directory above that path (the root when none) and as name the rest of the path; \
            each parent's refcount gains one per such child, as a find-paths source counts it. A \
            handle that opens a file outside SOURCE_DIR or nothing is refused with the inode's id; \
            --drop-missing drops it instead. The mount paths go when no file-handle inode is left. \
            Then each --rename OLD=NEW gives the inode at path OLD NEW's parent and last name, \
            and everything under it follows (OLD must be a path the state holds, NEW's parent a \
            directory the state holds or the root, NEW no path it holds); the old and new parents' \
            refcounts move with it (find-paths mode counts one reference per child). \
            --strip-file-handles drops the file handles a --migration-verify-handles source \
            recorded, so the destination finds the files by path alone: their identity is then no \
            longer verified. Then the state is checked against DIR exactly as preflight checks it. If \
            something would still fail, retarget exits 1 with preflight's report and writes nothing; \
            with --drop-missing it drops each inode that would fail, every inode under it, and the \
            open handles on them, and takes one off each surviving parent's refcount per dropped \
            child. A file-handle inode that would open a file outside DIR is refused (dropping does \
            not cure it; --handles-to-paths does). Everything else stays byte for byte: inode and handle order, ids, untouched \
            refcounts, handle flags, next_inode, next_handle, the negotiated options, V2's mount \
            paths; V1 stays V1.

            The new state must decode to exactly the intended state, with every untouched inode and \
            handle encoded as in STATE, and pass preflight against DIR; before a file OUT is put in \
            place it is read back and must hold exactly those bytes, and a migration file must read \
            back cleanly with every described size matching, as migration replace checks it \
            (standard output cannot be read back: there the bytes are checked before they are \
            written). A migration file is read once (it may be -). The new payload is framed in \
            --chunk-size chunks (64K by default, as QEMU reads virtiofsd's pipe; at most 1M).

            The report lists each change, a lost subtree as one line; -v lists every inode and \
            handle, and says how a migration file was read. It goes to standard output, or to \
            standard error when OUT is -. With --json (which needs -o FILE), \
            one JSON object; `statetool schema retarget` prints its JSON Schema.

            Exit status: 0 written, 1 refused (something would still fail, a rename that does not \
            apply, a state no drop can make loadable), 2 STATE unreadable or not a virtiofsd state, \
            DIR cannot be opened, or OUT cannot be written, 64 usage error. A refusal leaves no \
            output.

            \(MigrationReadingOptions.discussion)
            """
    )

    @Option(name: .customLong("shared-dir"), help: ArgumentHelp("The destination's shared directory.", valueName: "dir"))
    var sharedDirectory: String

    @Option(
        help: ArgumentHelp(
            "A file or directory that moved inside the shared directory, as paths relative to it (repeatable, applied in order).",
            valueName: "old=new"))
    var rename: [String] = []

    @Flag(help: "Drop each inode that would still fail, every inode under it, and the handles open on them.")
    var dropMissing = false

    @Flag(help: "Drop the file handles a --migration-verify-handles source recorded (identity no longer verified).")
    var stripFileHandles = false

    @Option(
        help: ArgumentHelp(
            "The shared directory the state was saved from, still there: make every inode located by file handle a path inode at the path its handle opens under it.",
            valueName: "source-dir"))
    var handlesToPaths: String?

    @Option(help: ArgumentHelp("In a migration file, the device whose state to change: its name (idstr) or section id.", valueName: "id"))
    var device: String?

    @Option(
        help: ArgumentHelp("Payload bytes per chunk of the new stream, up to 1M. Takes bytes or K/M suffixes.", valueName: "size"))
    var chunkSize = ByteCount(bytes: 64 << 10)

    @OptionGroup var output: OutputOptions
    @OptionGroup var compression: StreamCompressionOptions

    @OptionGroup var reading: MigrationReadingOptions

    @OptionGroup var format: JSONOption

    @Argument(help: ArgumentHelp("The state: a stream, a payload or a migration file; a file or - for standard input.", valueName: "state"))
    var file: String

    func validate() throws {
        if format.json && output.output == "-" { throw ValidationError("--json prints on standard output: write the state with -o FILE.") }
        guard chunkSize.bytes > 0, chunkSize.bytes <= UInt64(StateStreamFormat.qemuMaximumChunkLength) else {
            throw ValidationError("--chunk-size must be between 1 byte and 1M (QEMU's largest chunk).")
        }
        for argument in rename {
            do {
                _ = try Rename(parsing: argument)
            } catch {
                throw ValidationError("--rename \(argument): give OLD=NEW, two paths relative to the shared directory.")
            }
        }
    }

    func run() throws {
        let request = RetargetRequest(
            renames: try rename.map { try Rename(parsing: $0) }, dropMissing: dropMissing, stripFileHandles: stripFileHandles,
            handlesToPaths: handlesToPaths)
        var retargeting = FileRetargeting(try CommandSupport.open(file), sharedDirectory: sharedDirectory, request: request)
        retargeting.device = device
        retargeting.chunkSize = Int(chunkSize.bytes)
        retargeting.compression = compression.compression
        retargeting.strategy = reading.strategy
        let outputFile: OutputFile
        do {
            outputFile = try output.open(protecting: [file])
        } catch {
            throw CommandSupport.fail(error, file: file)
        }
        var progress = ProgressLine(for: retargeting.input.stream, quiet: output.quiet || retargeting.input.kind == .stream)
        let report: RetargetReport
        do {
            defer { progress.clear() }
            report = try retargeting.retarget(into: outputFile, named: output.output) { progress.update(bytes: $0) }
        } catch {
            throw failure(error)
        }
        reading.report(report.migration?.summary.reading, file: file)
        try self.report(report)
    }

    /// Why retarget refuses, and its exit status: 2 for what cannot be read or
    /// written, 1 for a refusal, 64 for options that cannot apply.
    private func failure(_ error: FileRetargeting.Failure) -> CommandFailure {
        switch error {
        case .wouldFail(let state, let report):
            let text = Preflight.describe(report, state: state, origin: "as given", file: file, sharedDirectory: sharedDirectory, all: false)
            return CommandFailure(.invalid, messages: text.split(separator: "\n").map(String.init) + ["\(file): error: \(error)"])
        case .refused(.preflight):
            return CommandFailure(.unreadable, "\(file): error: \(error)")
        case .refused, .replacement:
            return CommandFailure(.invalid, "\(file): error: \(error)")
        case .rewrite:
            return CommandFailure(.usage, "\(file): error: \(error)")
        case .output(let output):
            return CommandSupport.fail(output, file: file)
        case .noPayload, .notAVirtiofsdState, .noState, .input:
            return CommandSupport.fail(error, file: file)
        }
    }

    // MARK: - Report

    private func report(_ outcome: RetargetReport) throws {
        if format.json {
            try StandardOutput.printJSON(outcome, schema: "retarget")
        } else {
            try StandardOutput.printReport(describe(outcome), dataOnStandardOutput: output.output == "-")
        }
    }

    private func describe(_ outcome: RetargetReport) -> String {
        let result = outcome.result
        let original = result.original
        var text = "\(file): virtiofsd state V\(original.version.number) (\(outcome.origin)), \(original.inodes.count) inodes, \(original.handles.count) open handles\n"
        if !result.changesState { text += "nothing to change: the state already loads on \(sharedDirectory)\n" }
        if !result.convertedInodes.isEmpty {
            text += "converted \(result.convertedInodes.count) inodes located by file handle into path inodes, their paths found through their handles under \(handlesToPaths ?? "")\n"
            if reading.verbose {
                for inode in result.convertedInodes {
                    text += "  inode \(inode.id) \(inode.path): parent inode \(inode.parent), name \(inode.name)\n"
                }
            }
        }
        for rename in Set(result.renamed.map { "\($0.oldPath) -> \($0.newPath)" }).sorted() {
            let ids = result.renamed.filter { "\($0.oldPath) -> \($0.newPath)" == rename }.map { String($0.id) }
            text += "renamed \(rename) (inode \(ids.joined(separator: ", ")))\n"
        }
        if result.strippedFileHandles > 0 {
            text += "stripped the recorded file handles of \(result.strippedFileHandles) inodes: the destination finds them by path, their identity is no longer verified\n"
        }
        for tree in result.droppedTrees {
            var line = "dropped \(tree.path)"
            if tree.descendants > 0 { line += " and the \(tree.descendants) inode\(tree.descendants == 1 ? "" : "s") under it" }
            if tree.handles > 0 { line += ", \(tree.handles) open handle\(tree.handles == 1 ? "" : "s")" }
            text += line + " (inode \(tree.id): \(tree.reason))\n"
        }
        if !result.refcountChanges.isEmpty {
            let shown = reading.verbose ? result.refcountChanges[...] : result.refcountChanges.prefix(10)
            for change in shown { text += "refcount of \(change.path) (inode \(change.id)): \(change.old) -> \(change.new)\n" }
            if shown.count < result.refcountChanges.count { text += "... and \(result.refcountChanges.count - shown.count) more refcount changes (-v lists them)\n" }
        }
        if !result.uncheckedInodes.isEmpty {
            text += "unchecked: \(result.uncheckedInodes.count) inodes located by file handle could not be opened by handle, left as they are\n"
        }
        if reading.verbose {
            for inode in result.droppedInodes { text += "  dropped inode \(inode.id) \(inode.path): \(inode.reason)\n" }
            for handle in result.droppedHandles {
                text += "  dropped handle \(handle.id) on inode \(handle.inode) \(handle.path), \(OpenFlags.describe(handle.flags))\n"
            }
        }
        text += "result: \(result.state.inodes.count) inodes, \(result.state.handles.count) open handles; checked against \(sharedDirectory): every inode resolves"
        text += result.check.uncheckedInodes.isEmpty ? "\n" : " (but \(result.check.uncheckedInodes.count) unchecked)\n"
        text += "wrote \(output.output): \(outcome.written)\n"
        if let migration = outcome.migration {
            text += migration.describe(file: file)
        }
        return text
    }
}
