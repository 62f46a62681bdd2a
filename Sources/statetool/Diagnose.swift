import ArgumentParser
import CBuildInfo
import StateStream
import StatetoolKit
import VirtiofsdState

struct Diagnose: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Say why a VM did not come back from a restore or an incoming migration, and what brings it back.",
        discussion: """
            Takes any subset of: the file (a migration file, a libvirt save image or a state, raw or \
            compressed), the logs of the failed attempt (--log, repeatable: QEMU's standard error or \
            libvirt's domain log, virtiofsd's log, passt's log; QEMU 10 and 11.1 wordings), the \
            destination's shared directory (--shared-dir DIR, or DEVICE=DIR per device; for a save image \
            the virtiofs <filesystem> of its domain XML whose PCI address matches the device's section), \
            and the destination virtiofsd's arguments. --libvirt DOMAIN takes the managed-save image, the \
            domain log and the virtiofsd logs from libvirt's places under --libvirt-root.

            Each log is read from its end back to the start of its last attempt (libvirt's "starting up", \
            virtiofsd's "Waiting for vhost-user socket connection"). The file's state is checked against \
            its share as virtiofsd's loader opens it (as preflight does). A file without a vhost-user-fs \
            state gives its first back-end state of another kind: a passt state is decoded (damaged-state \
            when it does not decode); it needs no share.

            Prints the verdict first: restorable (nothing predicts a failure: what was checked), fixable (a \
            rewrite of the file fixes it: the exact command), destination (the destination must change: the \
            arguments to use), unrecoverable (what is lost), unknown (what to add to decide). Then each cause \
            with its evidence (log file and line, file offset, share path), then the fix. Causes: \
            missing-paths, moved-paths, file-handle-differs, file-handle-outside-share, \
            file-handle-capability, handle-reopen-failed, refcount-drained, descriptor-limit, \
            option-mismatch, virtqueue-size, backend-without-migration, truncated-file, damaged-state, \
            wrong-share, passt-state-rejected, unknown.

            --fix -o OUT applies a rewrite fix through retarget's machinery (checked, written to a temporary \
            file and put in place only on success); it refuses when the verdict is not fixable.

            --bundle OUT.tar.zst also writes a forensic bundle to attach to a bug report: a zstd-compressed \
            tar of manifest.json (statetool version, SHA-256 of every original input), diagnosis.json, \
            share-check.json (what the check of the share found), the back-end state re-encoded, the \
            file's device sections (their back-end state streams left out; never guest RAM) and VM \
            description, and the last attempt of each log (at most its last 4 MiB), with every file and \
            directory name of the share and the share's path replaced by stable pseudonyms (n1, n2, ... in \
            the order the state names them; /shared-directory) in all of them. `statetool diagnose \
            BUNDLE` reads a bundle (recognised by content: zstd, a tar whose first member is \
            manifest.json) and diagnoses its state and logs with the recorded share check; a bundle it \
            cannot read is exit status 1, a bundle that cannot be written 2.

            With --json, one JSON object; `statetool schema diagnose` prints its JSON Schema.

            Exit status: 0 restorable (or --fix wrote its output), 1 any other verdict (a failure \
            predicted or explained, or not decided), or --fix refused, 2 an input cannot be read or the \
            output written, 64 usage error.
            """
    )

    @Option(name: .customLong("log"), help: ArgumentHelp("A log of the failed attempt (QEMU, libvirt domain log, virtiofsd, passt); repeatable.", valueName: "file"))
    var logs: [String] = []

    @Option(
        name: .customLong("shared-dir"),
        help: ArgumentHelp("The destination's shared directory, for every device or as DEVICE=DIR for one; repeatable.", valueName: "[device=]dir"))
    var sharedDirectories: [String] = []

    @Option(
        help: ArgumentHelp(
            "The destination virtiofsd's arguments, as one string given with = (--destination-args=\"--rlimit-nofile=2000\").",
            valueName: "args"))
    var destinationArgs: String?

    @Option(help: ArgumentHelp("In a migration file, the device whose state to diagnose: its name (idstr) or section id.", valueName: "id"))
    var device: String?

    @Option(help: ArgumentHelp("A libvirt domain: its managed-save image, domain log and virtiofsd logs from libvirt's places.", valueName: "domain"))
    var libvirt: String?

    @Option(help: ArgumentHelp("The root libvirt's places are under (for --libvirt).", valueName: "dir"))
    var libvirtRoot = "/"

    @Flag(help: "Apply the rewrite fix, writing the fixed file to -o.")
    var fix = false

    @Option(name: .shortAndLong, help: ArgumentHelp("Where --fix writes the fixed file (and the name the fix command shows).", valueName: "file"))
    var output: String?

    @Option(
        help: ArgumentHelp(
            "Also write a forensic bundle for a bug report (zstd-compressed tar): state, logs, diagnosis, manifest; share names pseudonymised.",
            valueName: "file.tar.zst"))
    var bundle: String?

    @OptionGroup var format: JSONOption

    @OptionGroup var reading: MigrationReadingOptions

    @Argument(help: ArgumentHelp("The migration file, save image or state; a file or - for standard input.", valueName: "file"))
    var file: String?

    func validate() throws {
        if let destinationArgs {
            do {
                _ = try DestinationArguments(destinationArgs)
            } catch {
                throw ValidationError("--destination-args: \(error)")
            }
        }
        if fix && output == nil { throw ValidationError("--fix writes the fixed file to -o FILE: give -o.") }
        if output == "-" { throw ValidationError("-o names a file: the fixed file is checked by reading it back.") }
        if bundle == "-" { throw ValidationError("--bundle names a file.") }
        if bundle != nil && file == "-" { throw ValidationError("--bundle reads FILE more than once (to diagnose, to hash, to copy its sections): give a file, not standard input.") }
        if bundle != nil && fix { throw ValidationError("--bundle and --fix: run them one at a time.") }
        if fix && file == "-" { throw ValidationError("--fix reads FILE twice (to diagnose, then to rewrite): give a file, not standard input.") }
        if file != nil && libvirt != nil { throw ValidationError("--libvirt takes the domain's save image: give FILE or --libvirt, not both.") }
    }

    func run() throws {
        var request = DiagnosisRequest(
            file: file, logs: logs, shares: sharedDirectories.map(ShareAssignment.init(parsing:)),
            destination: try destinationArgs.map { try DestinationArguments($0) }, device: device, strategy: reading.strategy, output: output)
        if let libvirt {
            let domain = LibvirtDomainFiles(domain: libvirt, root: libvirtRoot)
            request.file = domain.saveImage
            request.logs = domain.logs + logs
            for path in domain.absent { StandardError.write("note: \(path) does not exist") }
        }
        if bundle != nil {
            do {
                try DiagnosisBundle.checkInputs(of: request)
            } catch {
                throw CommandFailure(.usage, "\(error)")
            }
        }
        var diagnosis: Diagnosis
        do {
            diagnosis = try Diagnosis.diagnose(request)
        } catch {
            throw CommandFailure(error.isInputUnreadable ? .unreadable : .invalid, "\(error)")
        }
        if fix {
            diagnosis.written = try apply(diagnosis, request: request)
        }
        var bundled: DiagnosisBundle.Written?
        if let bundle {
            do {
                bundled = try DiagnosisBundle.write(diagnosis, request: request, to: bundle, statetoolVersion: "\(String(cString: statetool_build_version())) (commit \(String(cString: statetool_build_commit())))")
            } catch {
                throw CommandFailure(.unreadable, "\(error)")
            }
        }
        if format.json {
            try StandardOutput.printJSON(diagnosis, schema: "diagnose")
        } else {
            let output = StandardOutput()
            try output.write(Self.describe(diagnosis))
            if let bundled, let bundle {
                try output.write("bundle: wrote \(bundle) (\(bundled.size) bytes, \(bundled.members.count) members, \(bundled.manifest.sections.count) device sections; \(bundled.manifest.pseudonyms) names pseudonymised)\n")
            }
            try output.flush()
        }
        if diagnosis.written == nil && diagnosis.verdict != .restorable { throw CommandFailure(.invalid) }
    }

    /// Applies the rewrite fix: retarget's machinery, checked, temporary file then commit.
    private func apply(_ diagnosis: Diagnosis, request: DiagnosisRequest) throws -> String {
        guard diagnosis.verdict == .fixable, let retarget = diagnosis.fix.request, let file = request.file,
            let share = diagnosis.sharedDirectory, let output
        else {
            let text = format.json ? "" : Self.describe(diagnosis)
            throw CommandFailure(
                .invalid, messages: (text.isEmpty ? [] : text.split(separator: "\n").map(String.init))
                    + ["\(request.file ?? "diagnose"): error: --fix refused: the verdict is \(diagnosis.verdict.rawValue), not fixable"])
        }
        var retargeting = FileRetargeting(try CommandSupport.open(file), sharedDirectory: share, request: retarget)
        retargeting.device = request.device
        retargeting.strategy = reading.strategy
        let outputFile: OutputFile
        do {
            outputFile = try OutputFile(path: output, protecting: [file])
        } catch {
            throw CommandSupport.fail(error, file: file)
        }
        do {
            _ = try retargeting.retarget(into: outputFile, named: output)
        } catch {
            throw CommandSupport.fail(error, file: file)
        }
        return output
    }

    /// The text report: the verdict first, the causes with their evidence, the fix.
    static func describe(_ diagnosis: Diagnosis) -> String {
        var text = "verdict: \(diagnosis.verdict.rawValue)\n"
        for cause in diagnosis.causes {
            text += "cause \(cause.kind.rawValue)\(cause.device.map { " (\($0))" } ?? ""): \(cause.summary)\n"
            for evidence in cause.evidence.prefix(10) {
                var place = evidence.source.rawValue
                if let path = evidence.path { place += " " + path }
                if let line = evidence.line { place += ":\(line)" }
                if let offset = evidence.offset { place += evidence.line == nil ? " at offset \(offset)" : "" }
                text += "  \(place): \(evidence.text)\n"
            }
            if cause.evidence.count > 10 { text += "  ... and \(cause.evidence.count - 10) more\n" }
        }
        switch diagnosis.fix.kind {
        case .rewrite:
            text += "fix: \(diagnosis.fix.command.map { $0.map(shellQuoted).joined(separator: " ") } ?? "")\n"
        case .destination:
            text += "fix on the destination: \(diagnosis.fix.destinationArgs?.joined(separator: " ") ?? "(see below)")\n"
        case .none:
            break
        }
        text += "  \(diagnosis.fix.explanation)\n"
        if let written = diagnosis.written { text += "fixed: wrote \(written)\n" }
        for item in diagnosis.checked { text += "checked: \(item)\n" }
        for item in diagnosis.missing { text += "add: \(item)\n" }
        return text
    }

    /// An argument as a shell reads it back.
    static func shellQuoted(_ argument: String) -> String {
        let plain = argument.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_-./:=+,@%".contains($0)) }
        return plain && !argument.isEmpty ? argument : "'" + argument.replacing("'", with: "'\\''") + "'"
    }
}

extension DiagnosisFailure {
    /// Whether the failure is an input that cannot be read (exit status 2).
    var isInputUnreadable: Bool {
        switch self {
        case .log, .unreadable: return true
        case .bundle(let failure):
            if case .malformed = failure { return false }
            return true
        case .input(let failure):
            if case .badSaveImage = failure { return false }
            return true
        }
    }
}
