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

            In order: each --rename OLD=NEW gives the inode at path OLD NEW's parent and last name, \
            and everything under it follows (OLD must be a path the state holds, NEW's parent a \
            directory the state holds or the root, NEW no path it holds); the old and new parents' \
            refcounts move with it (find-paths mode counts one reference per child). \
            --strip-file-handles drops the file handles a --migration-verify-handles source \
            recorded, so the destination finds the files by path alone: their identity is then no \
            longer verified. Then the state is checked against DIR exactly as preflight checks it. If \
            something would still fail, retarget exits 1 with preflight's report and writes nothing; \
            with --drop-missing it drops each inode that would fail, every inode under it, and the \
            open handles on them, and takes one off each surviving parent's refcount per dropped \
            child. Inodes located by file handle cannot be checked from paths: they are left and \
            listed. Everything else stays byte for byte: inode and handle order, ids, untouched \
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
            standard error when OUT is -. With --json, \
            one object: file, origin, sharedDirectory, output, version, inodes {before, after}, \
            handles {before, after}, renamed [{id, oldPath, newPath}], droppedTrees [{id, path, \
            reason, descendants, handles}], droppedInodes [{id, path, reason}], droppedHandles \
            [{id, inode, path, flags, flagNames}], refcountChanges [{id, path, old, new}], \
            strippedFileHandles, identityVerified, uncheckedInodes, changed, and migration (the \
            object migration replace --json prints) or null.

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
            renames: try rename.map { try Rename(parsing: $0) }, dropMissing: dropMissing, stripFileHandles: stripFileHandles)
        let input = try CommandSupport.open(file)
        let outcome = input.kind == .stream
            ? try retargetState(input, request: request)
            : try retargetMigrationFile(input, request: request)
        try report(outcome)
    }

    /// What was done, for the report.
    struct Outcome {
        let result: RetargetResult
        let origin: String
        let written: String
        let migration: MigrationRewrite.Result?
    }

    // MARK: - A stream or a payload

    private func retargetState(_ input: Input, request: RetargetRequest) throws -> Outcome {
        let loaded = try VirtiofsdInput.payload(of: input, device: nil)
        let state = try VirtiofsdInput.decode(loaded.bytes, file: file)
        let result = try retarget(state, request: request)
        let payload = result.state.encoded()
        try check(written: payload, by: result, original: loaded.bytes)
        let written: String
        do {
            let outputFile = try output.open(protecting: [file])
            let sink = try compression.sink(into: outputFile)
            if loaded.origin == .payload {
                try sink.write(payload)
                try sink.finish()
                written = "payload, \(payload.count) bytes"
            } else {
                let framing = try StreamTransforms.frame(payload: ByteArraySource(payload), chunkSize: Int(chunkSize.bytes), to: sink)
                written = "state stream, \(framing.chunks) chunks of at most \(chunkSize.bytes) payload bytes, \(framing.framedBytes) bytes"
            }
            if let readBack = try outputFile.openForReadingBack() {
                let again = try LoadedPayload.load(streamOrPayload: StateStreamInput(source: FileDescriptorSource(readBack, closesOnDeinit: true)))
                guard again.bytes == payload, again.origin == loaded.origin else {
                    throw RetargetError.verificationFailed("\(output.output) does not read back as the payload written")
                }
            }
            try outputFile.commit()
        } catch let error as RetargetError {
            throw refuse(error)
        } catch {
            throw CommandSupport.fail(error, file: file)
        }
        return Outcome(result: result, origin: loaded.origin.description, written: written, migration: nil)
    }

    // MARK: - A migration file

    private func retargetMigrationFile(_ input: Input, request: RetargetRequest) throws -> Outcome {
        var outcome: RetargetResult?
        let derive: ([UInt8]) throws -> [UInt8] = { old in
            let result = try retarget(VirtiofsdInput.decode(old, file: file), request: request)
            let payload = result.state.encoded()
            try check(written: payload, by: result, original: old)
            outcome = result
            return payload
        }
        let rewrite = MigrationRewrite(file: file, device: device, output: output, compression: compression, strategy: reading.strategy)
        let migration: MigrationRewrite.Result
        do {
            migration = try rewrite.run(
                input, selecting: { LoadedPayload.isWanted($0, device: nil) },
                with: .derived(maximumOldPayload: LoadedPayload.maximumSize, chunkSize: Int(chunkSize.bytes), derive))
        } catch let replacement as StateReplacement.Failure {
            throw CommandFailure(.invalid, "\(file): error: \(replacement)")
        } catch {
            throw CommandSupport.fail(error, file: file)
        }
        reading.report(migration.summary.reading, file: file)
        guard let result = outcome else { throw CommandFailure(.unreadable) }
        let location = migration.summary.location
        return Outcome(
            result: result, origin: LoadedPayload.Origin.migrationFile(device: location.section.name).description,
            written: (input.saveImage.map { "libvirt save image (\($0.header.format))" } ?? "migration file")
                + ", new state \(migration.summary.newLength) bytes in chunks of at most \(chunkSize.bytes) payload bytes",
            migration: migration)
    }

    // MARK: - Steps

    private func retarget(_ state: VirtiofsdState, request: RetargetRequest) throws -> RetargetResult {
        do {
            return try Retargeting.retarget(state, sharedDirectory: sharedDirectory, request: request)
        } catch {
            if case .wouldFail(let report) = error {
                StandardError.write(Preflight.describe(report, state: state, origin: "as given", file: file, sharedDirectory: sharedDirectory, all: false).trimmingTrailingNewline)
            }
            throw refuse(error)
        }
    }

    private func check(written payload: [UInt8], by result: RetargetResult, original: [UInt8]) throws {
        do {
            try result.verify(written: payload, original: original)
        } catch {
            throw refuse(error)
        }
    }

    /// Why retarget refuses, and its exit status.
    private func refuse(_ error: RetargetError) -> CommandFailure {
        if case .preflight = error { return CommandFailure(.unreadable, "\(file): error: \(error)") }
        return CommandFailure(.invalid, "\(file): error: \(error)")
    }

    // MARK: - Report

    private func report(_ outcome: Outcome) throws {
        if format.json {
            try StandardOutput.printJSON(RetargetJSON(command: self, outcome: outcome))
        } else {
            try StandardOutput.printReport(describe(outcome), dataOnStandardOutput: output.output == "-")
        }
    }

    private func describe(_ outcome: Outcome) -> String {
        let result = outcome.result
        let original = result.original
        var text = "\(file): virtiofsd state V\(original.version.number) (\(outcome.origin)), \(original.inodes.count) inodes, \(original.handles.count) open handles\n"
        if !result.changesState { text += "nothing to change: the state already loads on \(sharedDirectory)\n" }
        for rename in Set(result.renamed.map { "\($0.oldPath) -> \($0.newPath)" }).sorted() {
            let ids = result.renamed.filter { "\($0.oldPath) -> \($0.newPath)" == rename }.map { String($0.id) }
            text += "renamed \(rename) (inode \(ids.joined(separator: ", ")))\n"
        }
        if result.strippedFileHandles > 0 {
            text += "stripped the recorded file handles of \(result.strippedFileHandles) inodes: the destination finds them by path, their identity is no longer verified\n"
        }
        for tree in result.droppedTrees {
            var line = "dropped \(tree.path)"
            if tree.descendants > 0 { line += " and the \(tree.descendants) inodes under it" }
            if tree.handles > 0 { line += ", \(tree.handles) open handle\(tree.handles == 1 ? "" : "s")" }
            text += line + " (inode \(tree.id): \(tree.reason))\n"
        }
        if !result.refcountChanges.isEmpty {
            let shown = reading.verbose ? result.refcountChanges[...] : result.refcountChanges.prefix(10)
            for change in shown { text += "refcount of \(change.path) (inode \(change.id)): \(change.old) -> \(change.new)\n" }
            if shown.count < result.refcountChanges.count { text += "... and \(result.refcountChanges.count - shown.count) more refcount changes (-v lists them)\n" }
        }
        if !result.uncheckedInodes.isEmpty {
            text += "unchecked: \(result.uncheckedInodes.count) inodes located by file handle, left as they are\n"
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
            text += MigrationRewrite.describe(migration.summary, file: file, checked: migration.check != nil)
        }
        return text
    }
}

extension String {
    fileprivate var trimmingTrailingNewline: String { hasSuffix("\n") ? String(dropLast()) : self }
}

/// `retarget --json`.
private struct RetargetJSON: Encodable {
    struct Count: Encodable {
        let before: Int
        let after: Int
    }

    struct Renamed: Encodable {
        let id: UInt64
        let oldPath: String
        let newPath: String
    }

    struct Tree: Encodable {
        let id: UInt64
        let path: String
        let reason: String
        let descendants: Int
        let handles: Int
    }

    struct Inode: Encodable {
        let id: UInt64
        let path: String
        let reason: String
    }

    struct Handle: Encodable {
        let id: UInt64
        let inode: UInt64
        let path: String
        let flags: Int32
        let flagNames: String
    }

    struct Refcount: Encodable {
        let id: UInt64
        let path: String
        let old: UInt64
        let new: UInt64
    }

    let file: String
    let origin: String
    let sharedDirectory: String
    let output: String
    let version: UInt32
    let inodes: Count
    let handles: Count
    let renamed: [Renamed]
    let droppedTrees: [Tree]
    let droppedInodes: [Inode]
    let droppedHandles: [Handle]
    let refcountChanges: [Refcount]
    let strippedFileHandles: Int
    let identityVerified: Bool
    let uncheckedInodes: [UInt64]
    let changed: Bool
    let migration: Nullable<MigrationReplaceReport>

    init(command: Retarget, outcome: Retarget.Outcome) {
        let result = outcome.result
        file = command.file
        origin = outcome.origin
        sharedDirectory = command.sharedDirectory
        output = command.output.output
        version = result.original.version.number
        inodes = Count(before: result.original.inodes.count, after: result.state.inodes.count)
        handles = Count(before: result.original.handles.count, after: result.state.handles.count)
        renamed = result.renamed.map { Renamed(id: $0.id, oldPath: $0.oldPath, newPath: $0.newPath) }
        droppedTrees = result.droppedTrees.map { Tree(id: $0.id, path: $0.path, reason: $0.reason, descendants: $0.descendants, handles: $0.handles) }
        droppedInodes = result.droppedInodes.map { Inode(id: $0.id, path: $0.path, reason: $0.reason) }
        droppedHandles = result.droppedHandles.map {
            Handle(id: $0.id, inode: $0.inode, path: $0.path, flags: $0.flags, flagNames: OpenFlags.describe($0.flags))
        }
        refcountChanges = result.refcountChanges.map { Refcount(id: $0.id, path: $0.path, old: $0.old, new: $0.new) }
        strippedFileHandles = result.strippedFileHandles
        identityVerified = result.state.inodes.contains { $0.fileHandle != nil }
        uncheckedInodes = result.uncheckedInodes
        changed = result.changesState
        migration = Nullable(outcome.migration.map { MigrationReplaceReport(file: command.file, output: command.output.output, result: $0) })
    }
}
