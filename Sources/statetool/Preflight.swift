import ArgumentParser
import FoundationEssentials
import MigrationFile
import StateStream
import VirtiofsdState
import StatetoolKit

struct Preflight: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check that a destination's shared directory can take a virtiofsd state.",
        discussion: """
            Decodes the virtiofsd state (from a state stream, a bare payload, or a whole migration \
            file, raw or zstd) and opens every inode in DIR the way a destination virtiofsd loads it: \
            the root is DIR; each other inode is its name opened in its parent inode's directory with \
            O_PATH|O_NOFOLLOW, so no symbolic link is followed and nothing outside DIR is reached; \
            inodes are taken in virtiofsd's order (passes over the list, each loaded one replaced by \
            the last). An inode fails if it cannot be opened, if its parent failed, if the source sent \
            it as invalid, if its name is not a single directory entry, or if its file handle differs \
            from the one the source recorded (--migration-verify-handles). Handles on failing inodes \
            fail too.

            File-handle inodes (--migration-mode=file-handles) are opened as virtiofsd opens them, \
            with open_by_handle_at (O_PATH, nothing else; it needs CAP_DAC_READ_SEARCH) on the mount \
            the state's mount paths name in DIR. A handle names a file of a file system, not a path: \
            each is resolving (the file found is under DIR: its name, less DIR's, opens beneath DIR \
            as the same device and inode), resolving outside the share (the file lies outside DIR, \
            on a copy of the share typically the original: virtiofsd loads it and serves the guest \
            that file; a finding, exit status 1; retarget --handles-to-paths SOURCE_DIR turns such \
            inodes into path inodes), or stale (the handle does not open: a failing inode, where \
            abort stops and which guest-error makes invalid). Without the capability they are \
            listed as unchecked. virtiofsd run as root opens file handles only with \
            --modcaps=+dac_read_search (or --inode-file-handles other than never): with \
            --destination-args lacking both, each file-handle inode fails with "Opening file handle: \
            Operation not permitted", as the real one fails.

            Lists the failing inodes with the ids virtiofsd names in its log (with \
            --migration-on-error=guest-error each becomes "Invalid inode N"; with abort, the first \
            one stops the load), and the failing handles. Problems that stop any load (duplicate \
            ids, parent chains that loop or name missing inodes, handles on missing inodes, a bad \
            root) are listed as fatal.

            With --json, one JSON object; `statetool schema preflight` prints its JSON Schema, \
            which names and describes every key, and the object's "schema" key names that schema.

            \(MigrationReadingOptions.discussion)

            Exit status: 0 every inode resolves, 1 something would fail or a file-handle inode \
            resolves outside DIR, 2 the state cannot be read \
            or decoded or DIR cannot be opened, 64 usage error.
            """
    )

    @Option(name: .customLong("shared-dir"), help: ArgumentHelp("The destination's shared directory.", valueName: "dir"))
    var sharedDirectory: String

    @Option(help: ArgumentHelp("In a migration file, the device whose state to check: its name (idstr) or section id.", valueName: "id"))
    var device: String?

    @Option(
        help: ArgumentHelp(
            "The destination virtiofsd's arguments, as one string given with = (--destination-args=\"--no-announce-submounts --rlimit-nofile=20000\"): the negotiated options it lacks and its descriptor limit are checked as it applies them.",
            valueName: "args"))
    var destinationArgs: String?

    @Option(
        help: ArgumentHelp(
            "The destination's virtiofsd release, whose defaults fill in what --destination-args leaves out: 1.13 (inode file handles never) or 1.14 (inode file handles prefer, so file handles open without --modcaps=+dac_read_search).",
            valueName: "release"))
    var destinationRelease: DestinationConfiguration.Release = .v1_13

    @OptionGroup var format: JSONOption

    @Flag(help: "List every failing inode, not only the first 20.")
    var all = false

    @OptionGroup var reading: MigrationReadingOptions

    @Argument(help: ArgumentHelp("The state: a stream, a payload or a migration file; a file or - for standard input.", valueName: "state"))
    var file: String

    func validate() throws {
        if let destinationArgs {
            do {
                _ = try DestinationConfiguration(arguments: destinationArgs.split(separator: " ").map(String.init), release: destinationRelease)
            } catch {
                throw ValidationError("--destination-args: \(error)")
            }
        }
    }

    func run() throws {
        let destination = try destinationArgs.map {
            try DestinationConfiguration(arguments: $0.split(separator: " ").map(String.init), release: destinationRelease)
        } ?? (destinationRelease == .v1_13 ? nil : DestinationConfiguration(release: destinationRelease))
        let result: PreflightResult
        do {
            result = try StatePreflight.check(
                CommandSupport.open(file), device: device, sharedDirectory: sharedDirectory, destination: destination,
                strategy: reading.strategy)
        } catch let failure as StatePreflight.Failure {
            throw CommandSupport.fail(failure, file: file)
        }
        reading.report(result.reading, file: file)
        if format.json {
            try StandardOutput.printJSON(result, schema: "preflight")
        } else {
            let output = StandardOutput()
            try output.write(Self.describe(result.report, state: result.state, origin: result.origin, file: file, sharedDirectory: sharedDirectory, all: all))
            try output.flush()
        }
        if !result.report.isClean { throw CommandFailure(.invalid) }
    }

    /// The text report, for `preflight` and for `retarget` when it refuses.
    static func describe(
        _ report: PreflightReport, state: VirtiofsdState, origin: String, file: String, sharedDirectory: String, all: Bool
    ) -> String {
        var text = "\(file): virtiofsd state V\(state.version.number) (\(origin)), \(state.inodes.count) inodes, \(state.handles.count) open handles\n"
        text += "checked against \(sharedDirectory): "
        if report.isClean {
            text += "every inode resolves\n"
        } else if report.failingInodes.isEmpty && report.failingHandles.isEmpty && report.fatalProblems.isEmpty {
            text += "the state would load, but \(report.fileHandlesOutsideShare.count) inodes located by file handle resolve outside it\n"
        } else if !report.fatalProblems.isEmpty && report.failingInodes.isEmpty {
            text += "the load would fail whatever --migration-on-error says\n"
        } else {
            text += "\(report.failingInodes.count) inodes would be invalid, \(report.failingHandles.count) open handles would fail\n"
        }
        text += "needs: options \(report.requiredOptions.isEmpty ? "none" : report.requiredOptions.joined(separator: ", ")), "
            + "\(report.descriptorsNeeded) \(report.descriptorsNeeded == 1 ? "descriptor" : "descriptors") for the guest's inodes and handles\n"
        if !report.fileHandleInodes.isEmpty {
            text += "needs: a destination virtiofsd that can open file handles (CAP_DAC_READ_SEARCH: --modcaps=+dac_read_search)\n"
            let counts = Dictionary(grouping: report.fileHandleInodes, by: \.resolution.status).mapValues(\.count)
            text += "file handles: \(report.fileHandleInodes.count) inodes located by file handle: \(counts["resolving", default: 0]) resolving under \(sharedDirectory), "
                + "\(counts["resolving-outside-share", default: 0]) resolving outside it, \(counts["stale", default: 0]) stale\n"
        }
        if !report.uncheckedInodes.isEmpty {
            text += "unchecked: \(report.uncheckedInodes.count) inodes located by file handle could not be opened by handle (CAP_DAC_READ_SEARCH needed)\n"
        }
        let outside = report.fileHandlesOutsideShare
        for inode in outside.prefix(all ? .max : 20) {
            guard case .outsideShare(let found) = inode.resolution else { continue }
            text += "outside share: inode \(inode.id): its file handle opens \(found), outside \(sharedDirectory): "
                + "virtiofsd loads it and serves the guest that file (retarget --handles-to-paths SOURCE_DIR makes it a path inode)\n"
        }
        if outside.count > 20 && !all { text += "  ... and \(outside.count - 20) more outside the share (--all lists them)\n" }
        for problem in report.fatalProblems { text += "fatal: \(problem)\n" }
        if !report.outsideShare.isEmpty {
            let paths = InodePaths(state)
            for id in report.outsideShare.prefix(all ? .max : 20) {
                text += "security: inode \(id) (\(paths.display(id))) resolves outside \(sharedDirectory): "
                    + "virtiofsd without its namespace sandbox opens it there; statetool did not\n"
            }
        }
        if !report.drainedInodes.isEmpty {
            let ids = report.drainedInodes.prefix(10).map(String.init).joined(separator: ", ")
            text += "drained: \(report.drainedInodes.count) inodes leave the inode store during the load, their refcount used up by their children (\(ids)\(report.drainedInodes.count > 10 ? ", ..." : ""))\n"
        }
        if let first = report.failingInodes.first {
            text += "first failure (where --migration-on-error=abort stops): inode \(first.id): \(first.reason)\n"
            text += "failing inodes:\n"
            let shown = all ? report.failingInodes[...] : report.failingInodes.prefix(20)
            for failure in shown {
                text += TextFormat.padded(failure.id, to: 10) + "  \(failure.path): \(failure.reason)\n"
            }
            if shown.count < report.failingInodes.count {
                text += "  ... and \(report.failingInodes.count - shown.count) more (--all lists them)\n"
            }
        }
        if !report.failingHandles.isEmpty {
            text += "failing handles:\n"
            for handle in report.failingHandles {
                text += TextFormat.padded(handle.id, to: 10) + "  on inode \(handle.inode) \(handle.path), \(OpenFlags.describe(handle.flags))"
                if case .reopenFailed(let errno) = handle.cause { text += ": reopening it fails: \(errno)" }
                text += "\n"
            }
        }
        return text
    }
}

extension DestinationConfiguration.Release: ExpressibleByArgument {}
