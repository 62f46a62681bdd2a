import VirtiofsdState

extension Diagnosis {
    /// The verdict and the fix the causes call for.
    static func conclude(
        _ list: CauseList, remedies: Remedies, request: DiagnosisRequest, device: String?, share: String?, state: StateSummary?,
        checked: [String], missing: [String], otherBackEndDecoded: Bool = false
    ) -> Diagnosis {
        let causes = list.sorted
        let remediesNeeded = Set(causes.map(\.kind.remedy))
        var missing = missing
        let verdict: Verdict
        let fix: Fix
        if remediesNeeded.contains(.unrecoverable) {
            verdict = .unrecoverable
            fix = Fix(kind: .none, explanation: lossExplanation(causes))
        } else if remediesNeeded.contains(.destination) {
            verdict = .destination
            fix = destinationFix(causes, remedies: remedies, state: state?.state)
        } else if remediesNeeded.contains(.fixable) {
            if let file = request.file, let share, state != nil {
                verdict = .fixable
                fix = rewriteFix(causes, remedies: remedies, file: file, share: share, device: request.device, output: request.output)
            } else {
                verdict = .unknown
                if request.file == nil { missing.append("FILE: the migration file or save image, to write the fix") }
                fix = Fix(kind: .none, explanation: "A rewrite of the file would fix this; to get the exact command, add: " + missing.joined(separator: "; ") + ".")
            }
        } else if causes.isEmpty, (share != nil && state != nil) || otherBackEndDecoded {
            verdict = .restorable
            fix = Fix(kind: .none, explanation: "Nothing predicts a failure: checked " + checked.joined(separator: "; ") + ".")
        } else {
            verdict = .unknown
            let add = missing.isEmpty ? "" : " Add " + missing.joined(separator: "; ") + "."
            fix = Fix(kind: .none, explanation: (causes.isEmpty ? "Nothing read explains a failure." : "What was read does not say why the restore failed.") + add)
        }
        return Diagnosis(
            verdict: verdict, causes: causes, fix: fix, file: request.file, device: device, sharedDirectory: share, checked: checked, missing: missing)
    }

    /// `statetool retarget FILE --shared-dir DIR ... -o OUT`.
    private static func rewriteFix(_ causes: [Cause], remedies: Remedies, file: String, share: String, device: String?, output: String?) -> Fix {
        let kinds = Set(causes.map(\.kind))
        let renames = remedies.renames.compactMap { try? Rename(old: $0.old, new: $0.new) }
        let drop = kinds.contains(.missingPaths) || kinds.contains(.handleReopenFailed)
        let strip = kinds.contains(.fileHandleDiffers)
        let handlesToPaths = kinds.contains(.fileHandleOutsideShare) ? remedies.handlesToPaths : nil
        let request = RetargetRequest(renames: renames, dropMissing: drop, stripFileHandles: strip, handlesToPaths: handlesToPaths)
        let output = output ?? fixedName(file)
        var command = ["statetool", "retarget", file, "--shared-dir", share]
        if let device { command += ["--device", device] }
        for rename in renames { command += ["--rename", rename.description] }
        if drop { command.append("--drop-missing") }
        if strip { command.append("--strip-file-handles") }
        if let handlesToPaths { command += ["--handles-to-paths", handlesToPaths] }
        command += ["-o", output]
        var parts: [String] = []
        if !renames.isEmpty { parts.append("points the moved paths at where they are now (\(renames.map(\.description).joined(separator: ", ")))") }
        if drop { parts.append("drops what is missing from the share, with everything under it and the files open on it: the guest gets EBADF on those open files and ENOENT on those paths") }
        if strip { parts.append("drops the recorded file handles, so the copy's files are found by path (their identity is no longer verified)") }
        if let handlesToPaths {
            parts.append("turns the inodes that travel as file handles into paths, each found through its handle under \(handlesToPaths) (which must still exist), so the share's own files are used")
        }
        return Fix(
            kind: .rewrite, command: command,
            explanation: "Rewrite the file: retarget " + parts.joined(separator: "; ") + ". It writes \(output), checked against \(share), and leaves \(file) as it is; restore from \(output).",
            request: request)
    }

    /// The destination's arguments the causes call for.
    private static func destinationFix(_ causes: [Cause], remedies: Remedies, state: VirtiofsdState?) -> Fix {
        var arguments: [String] = []
        var explanation: [String] = []
        for cause in causes {
            switch cause.kind {
            case .optionMismatch:
                let options = remedies.options.sorted()
                arguments += options.map { "--\($0)" }
                explanation.append("start virtiofsd with \(options.map { "--\($0)" }.joined(separator: " ")): the source negotiated \(options.joined(separator: ", ")) and the guest relies on it")
            case .descriptorLimit:
                if remedies.descriptorsNeeded > 0 {
                    let needed = remedies.descriptorsNeeded + 609 + max(remedies.threadPoolSize, 1)
                    let limit = (needed / 1000 + 1) * 1000
                    arguments.append("--rlimit-nofile=\(limit)")
                    explanation.append(
                        "start virtiofsd with --rlimit-nofile=\(limit): the load takes \(remedies.descriptorsNeeded) descriptors for the guest plus virtiofsd's own reserve (the hard limit must allow it), or with --inode-file-handles=mandatory, which holds no descriptor per inode")
                } else {
                    arguments.append("--inode-file-handles=mandatory")
                    explanation.append("start virtiofsd with --inode-file-handles=mandatory (no descriptor per inode), or with a higher --rlimit-nofile (give the file to compute it)")
                }
            case .virtqueueSize:
                let size = remedies.queueSize ?? 1024
                arguments.append("queue-size=\(size)")
                explanation.append("give the destination's device the file's queue size: -device vhost-user-fs-pci,...,queue-size=\(size) (libvirt: <driver type='virtiofs' queue='\(size)'/>)")
            case .fileHandleCapability:
                arguments.append("--modcaps=+dac_read_search")
                explanation.append("start virtiofsd with --modcaps=+dac_read_search: the state locates inodes by file handle, which takes CAP_DAC_READ_SEARCH")
            case .backendWithoutMigration:
                explanation.append("serve the device with a back-end that loads device states (virtiofsd 1.13 or later)")
            case .wrongShare:
                explanation.append("serve the directory the state was saved from: --shared-dir names another directory")
            case .passtStateRejected:
                explanation.append(
                    "run a passt on the destination that reads this state (passt's line names what it refused: a version it does not read, or a state that is not one; statetool inspect FILE says whether the state itself decodes)")
            case .fileHandleOutsideShare:
                explanation.append("restore onto the original share, or turn the file-handle inodes into paths first")
            default:
                break
            }
        }
        if causes.contains(where: { $0.kind.remedy == .fixable }) {
            explanation.append("then run diagnose again: the file needs a rewrite too")
        }
        return Fix(
            kind: .destination, destinationArgs: arguments.isEmpty ? nil : arguments,
            explanation: explanation.map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined(separator: ". ") + ".")
    }

    /// What is lost, for an unrecoverable verdict.
    private static func lossExplanation(_ causes: [Cause]) -> String {
        var parts: [String] = []
        for cause in causes where cause.kind.remedy == .unrecoverable {
            switch cause.kind {
            case .truncatedFile:
                parts.append("The file ends before QEMU has read every device: what is missing (the rest of the device states) is nowhere else; restore an earlier complete save, or boot the guest afresh")
            case .damagedState:
                parts.append("The back-end's state is broken: the guest's open files and looked-up inodes cannot be rebuilt from it; boot the guest afresh, or restore an earlier save")
            case .refcountDrained:
                parts.append("The state's refcounts do not hold its tree together: the loader cannot resolve every inode whatever the share holds; boot the guest afresh, or restore an earlier save")
            default:
                break
            }
        }
        return parts.joined(separator: ". ") + "."
    }

    /// `DIR/NAME.fixed.EXT` for `DIR/NAME.EXT`: the name a rewrite fix writes by default.
    public static func fixedName(_ file: String) -> String {
        let slash = file.lastIndex(of: "/")
        let directory = slash.map { String(file[...$0]) } ?? ""
        let name = slash.map { String(file[file.index(after: $0)...]) } ?? file
        if let dot = name.dropFirst().firstIndex(of: ".") {
            return directory + name[..<dot] + ".fixed" + name[dot...]
        }
        return directory + name + ".fixed"
    }
}
