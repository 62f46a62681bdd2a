import FoundationEssentials
import MigrationFile
import StateStream
import SystemCalls
import SystemPackage
import VirtiofsdState

/// Why `diagnose` cannot run at all (everything else is a cause).
public enum DiagnosisFailure: Error, Sendable, CustomStringConvertible {
    /// A log cannot be read.
    case log(LogAttempt.Failure)
    /// The file cannot be opened or read.
    case input(InputFailure)
    /// The file cannot be read past some point for a reason other than its content.
    case unreadable(path: String, InputError)
    /// The file is a bundle that cannot be read, or a bundle cannot be written.
    case bundle(DiagnosisBundle.Failure)

    /// `PATH: error: ...`.
    public var description: String {
        switch self {
        case .log(let failure): return failure.description
        case .input(let failure): return failure.description
        case .unreadable(let path, let error): return "\(path): error: \(error)"
        case .bundle(let failure): return failure.description
        }
    }
}

extension Diagnosis {
    /// Diagnoses what `request` gives: reads the logs from their ends for the
    /// last attempt, loads the file's state, checks it against its share as
    /// virtiofsd's loader would (``StatePreflight``), and combines what both
    /// say into causes, a verdict and a fix.
    ///
    /// - Throws: ``DiagnosisFailure`` when a log or the file cannot be read at all.
    public static func diagnose(_ request: DiagnosisRequest) throws(DiagnosisFailure) -> Diagnosis {
        if let file = request.file, request.recordedShareCheck == nil, DiagnosisBundle.isBundle(file) {
            return try diagnoseBundle(file, request: request)
        }
        var causes = CauseList()
        var remedies = Remedies()
        var checked: [String] = []
        var missing: [String] = []

        // The logs: the last attempt of each.
        var attempts: [LogAttempt] = []
        for log in request.logs {
            do {
                attempts.append(try LogAttempt.read(log))
            } catch {
                throw .log(error)
            }
        }
        let lines = attempts.flatMap(\.lines)
        var device = request.device ?? lines.lazy.compactMap { line -> String? in
            if case .deviceLoadFailed(let device) = line.message { return device }
            if case .migrationLoadFailed(let reason) = line.message {
                return reason.text(after: "error while loading state for instance ", through: "of device '", until: "'")
            }
            return nil
        }.first
        for attempt in attempts {
            let programs = attempt.sources.map(\.rawValue).sorted().joined(separator: ", ")
            checked.append("\(attempt.path) from line \(attempt.firstLine) (\(programs.isEmpty ? "no line statetool reads" : programs))")
        }

        // The file: its state, checked against its share.
        var sharedDirectory: String?
        var stateSummary: StateSummary?
        var shareCheck: ShareCheckRecord?
        var otherBackEndChecked = false
        if let file = request.file {
            let input: Input
            do {
                input = try Input.open(file)
            } catch {
                if case .badSaveImage(_, let problem) = error {
                    causes.add(
                        .damagedState, device: device, summary: "\(file) is no save image libvirt can restore: \(problem)",
                        evidence: Evidence(source: .file, path: file, offset: 0, text: "\(problem)"))
                    return conclude(causes, remedies: remedies, request: request, device: device, share: nil, state: nil, checked: checked, missing: missing)
                }
                throw .input(error)
            }
            let domainShares = input.saveImage.map { DomainShare.shares(in: $0.domainXML) } ?? []
            switch loadState(input, file: file, device: request.device, strategy: request.strategy, causes: &causes) {
            case .failed(let error):
                throw .unreadable(path: file, error)
            case .noState:
                checked.append("\(file): no vhost-user back-end state")
            case .otherBackEnd(let loaded, let recognized):
                if case .migrationFile(let name) = loaded.origin { device = name }
                otherBackEndChecked = true
                checked.append("\(file): \(recognized.backEnd) \(recognized.headline), which decodes")
            case .broken:
                break
            case .loaded(let loaded, let state):
                if case .migrationFile(let name) = loaded.origin { device = name }
                stateSummary = StateSummary(state: state, streamOffset: loaded.streamOffset)
                checked.append("\(file): virtiofsd state V\(state.version.number), \(state.inodes.count) inodes, \(state.handles.count) open handles")
                let share = request.shares.first { $0.device != nil && $0.device == device }?.directory
                    ?? request.shares.first { $0.device == nil }?.directory
                    ?? DomainShare.share(for: device, in: domainShares)?.directory
                if let recorded = request.recordedShareCheck {
                    // A bundle's state: what the check of its share found when the bundle was made.
                    sharedDirectory = recorded.sharedDirectory
                    causes.add(contentsOf: recorded.causes)
                    remedies = recorded.remedies
                    checked += recorded.checked
                    shareCheck = recorded
                } else if let share {
                    sharedDirectory = share
                    var shareCauses = CauseList()
                    var shareRemedies = Remedies()
                    var shareChecked: [String] = []
                    let report = checkAgainstShare(
                        state, file: file, streamOffset: loaded.streamOffset, device: device, share: share,
                        destination: request.destination, causes: &shareCauses, remedies: &shareRemedies, checked: &shareChecked)
                    causes.add(contentsOf: shareCauses.causes)
                    remedies = shareRemedies
                    checked += shareChecked
                    var record = ShareCheckRecord(sharedDirectory: share, causes: shareCauses, remedies: shareRemedies, checked: shareChecked)
                    if let report {
                        let limit = ShareCheckRecord.maximumFailures
                        record.failingInodes = report.failingInodes.prefix(limit).map { .init(id: $0.id, path: $0.path, reason: $0.reason) }
                        record.failingInodeCount = report.failingInodes.count
                        record.failingHandles = report.failingHandles.prefix(limit).map { .init(id: $0.id, path: $0.path, reason: $0.reason) }
                        record.failingHandleCount = report.failingHandles.count
                    }
                    shareCheck = record
                } else {
                    missing.append("--shared-dir DIR: the destination's shared directory, to check the state against it")
                }
            }
        } else {
            missing.append("FILE: the migration file or save image, to check its state")
            if let share = request.shares.first?.directory { sharedDirectory = share }
        }
        if request.logs.isEmpty {
            missing.append("--log FILE: QEMU's standard error or libvirt's domain log, and the back-end's log, to see what failed")
        }

        // What the logs say.
        readLogs(lines, device: device, causes: &causes, remedies: &remedies, missing: &missing)
        if let file = request.file, let cause = causes.first(.virtqueueSize) {
            causes.add(.virtqueueSize, device: cause.device, summary: cause.summary, evidence: virtqueueEvidence(file: file, strategy: request.strategy))
        }
        var diagnosis = conclude(
            causes, remedies: remedies, request: request, device: device, share: sharedDirectory, state: stateSummary, checked: checked, missing: missing,
            otherBackEndDecoded: otherBackEndChecked)
        diagnosis.shareCheck = shareCheck
        return diagnosis
    }

    /// Diagnoses a bundle: its state and logs (unpacked into a temporary
    /// directory, removed after) with its recorded share check in place of a
    /// share; logs given beside the bundle are read too. Evidence paths name
    /// the bundle's members (`BUNDLE/NAME`).
    static func diagnoseBundle(_ bundle: String, request: DiagnosisRequest) throws(DiagnosisFailure) -> Diagnosis {
        let directory = FileManager.default.temporaryDirectory.path + "/statetool-bundle-" + UUID().uuidString
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        } catch {
            throw .bundle(.input(path: directory, "cannot create a temporary directory: \(error)"))
        }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let opened: DiagnosisBundle.Opened
        do {
            opened = try DiagnosisBundle.open(bundle, into: directory)
        } catch {
            throw .bundle(error)
        }
        var bundled = opened.request
        bundled.logs += request.logs
        bundled.device = request.device ?? bundled.device
        bundled.destination = request.destination
        bundled.strategy = request.strategy
        bundled.output = request.output
        if bundled.recordedShareCheck == nil { bundled.shares = request.shares }
        let diagnosis = try diagnose(bundled)
        let members = { (text: String) in
            text.replacing(directory + "/log-", with: bundle + "/logs/").replacing(directory + "/", with: bundle + "/state/")
        }
        var renamed = diagnosis.mapped(members)
        renamed = Diagnosis(
            verdict: renamed.verdict, causes: renamed.causes, fix: renamed.fix, file: bundle, device: renamed.device,
            sharedDirectory: renamed.sharedDirectory, checked: renamed.checked, missing: renamed.missing)
        renamed.shareCheck = diagnosis.shareCheck
        return renamed
    }

    /// The checks that read the file itself beyond its back-end state: the
    /// sizes of its virtqueues, as the `virtio` field of each virtio-pci device
    /// holds them (``VirtioDeviceState``), where they exceed QEMU's default
    /// queue-size. They become evidence of a `virtqueue-size` cause the logs
    /// name; alone they predict nothing (QEMU 10.0 does not check, and the
    /// destination's queue-size is not known), and are said as checked.
    static func virtqueueEvidence(file: String, strategy: ReadingStrategy) -> [Evidence] {
        guard let input = try? Input.open(file), input.kind != .stream else { return [] }
        let reader = MigrationFileReader(input: input.stream, strategy: strategy, keepsSectionBodies: true)
        guard let devices = try? DeviceStates.read(reader) else { return [] }
        return devices.virtioFindings().filter { $0.kind.rawValue == "virtqueue-size" }.map {
            Evidence(source: .file, path: file, offset: $0.offset, text: $0.message)
        }
    }

    /// The deepest directory every path lies under, if not `/`.
    private static func commonDirectory(_ paths: [String]) -> String? {
        guard var common = paths.first.map({ $0.split(separator: "/", omittingEmptySubsequences: true).dropLast() }) else { return nil }
        for path in paths.dropFirst() {
            let components = path.split(separator: "/", omittingEmptySubsequences: true).dropLast()
            common = common.prefix(zip(common, components).prefix { $0 == $1 }.count)
        }
        return common.isEmpty ? nil : "/" + common.joined(separator: "/")
    }

    /// A state decoded, with where it is.
    struct StateSummary {
        let state: VirtiofsdState
        let streamOffset: UInt64?
    }

    enum LoadOutcome {
        case loaded(LoadedPayload, VirtiofsdState)
        /// Another back-end's state (passt's), decoded: nothing to check against a share.
        case otherBackEnd(LoadedPayload, RecognizedPayload)
        case noState
        case broken
        case failed(InputError)
    }

    /// Loads the state; a broken file or state becomes a cause.
    static func loadState(
        _ input: Input, file: String, device: String?, strategy: ReadingStrategy, causes: inout CauseList
    ) -> LoadOutcome {
        let loaded: LoadedPayload
        do {
            // The vhost-user-fs state, or without one the first of any kind (passt's).
            loaded = try LoadedPayload.load(from: input, device: device, orAnyKind: true, strategy: strategy)
        } catch let failure as LoadedPayload.Failure {
            switch failure {
            case .noState:
                return .noState
            case .tooLarge:
                causes.add(.damagedState, device: device, summary: "the state is \(failure)", evidence: Evidence(source: .file, path: file, text: "\(failure)"))
            case .brokenStream(let problem):
                let truncated = [.truncatedLength, .truncatedChunk, .missingTerminator].contains(problem.kind)
                causes.add(
                    truncated ? .truncatedFile : .damagedState, device: device,
                    summary: truncated ? "\(file) ends before its state does" : "the state's framing is broken",
                    evidence: Evidence(source: .file, path: file, offset: problem.offset, text: "\(problem.kind.rawValue) at offset \(problem.offset): \(problem.message)"))
            case .brokenMigrationFile(let problem):
                var truncated = problem.kind == .truncated
                if case .stateStream(_, let streamProblem, _) = problem {
                    truncated = [.truncatedLength, .truncatedChunk, .missingTerminator].contains(streamProblem.kind)
                }
                causes.add(
                    truncated ? .truncatedFile : .damagedState, device: device,
                    summary: truncated ? "\(file) ends before the state of the device does: QEMU cannot load it" : "\(file) is broken where QEMU reads the device's state",
                    evidence: Evidence(source: .file, path: file, offset: problem.offset, text: "\(problem.kind.rawValue) at offset \(problem.offset): \(problem.message)"))
            }
            return .broken
        } catch let error as InputError {
            return .failed(error)
        } catch {
            return .failed(.readFailed(.ioError))
        }
        // What the payload is, by every registered back-end's decoder; virtiofsd's is
        // decoded below, another's is what its decoder made of it.
        if let recognized = PayloadRecognition.recognize(loaded.bytes), recognized.backEnd != VirtiofsdBackEnd().name {
            if case .failure(let failure) = recognized.result {
                causes.add(
                    .damagedState, device: loadedDevice(loaded) ?? device, summary: "the \(recognized.backEnd) state does not decode: \(failure.record.message)",
                    evidence: Evidence(source: .file, path: file, offset: loaded.streamOffset, text: failure.description))
                return .broken
            }
            return .otherBackEnd(loaded, recognized)
        }
        do {
            return .loaded(loaded, try VirtiofsdState(decoding: loaded.bytes))
        } catch {
            causes.add(
                .damagedState, device: device, summary: "the virtiofsd state does not decode: \(error.message)",
                evidence: Evidence(
                    source: .file, path: file, offset: loaded.streamOffset,
                    text: "\(error.kind.rawValue) at payload offset \(error.payloadOffset): \(error.message)"))
            return .broken
        }
    }

    /// The device a migration file's state was loaded from.
    private static func loadedDevice(_ loaded: LoadedPayload) -> String? {
        if case .migrationFile(let name) = loaded.origin { return name }
        return nil
    }

    /// Preflight against `share`, its findings as causes; returns its report
    /// (`nil` when the share cannot be opened).
    @discardableResult
    private static func checkAgainstShare(
        _ state: VirtiofsdState, file: String, streamOffset: UInt64?, device: String?, share: String, destination: DestinationArguments?,
        causes: inout CauseList, remedies: inout Remedies, checked: inout [String]
    ) -> PreflightReport? {
        let report: PreflightReport
        do {
            report = try PreflightCheck.check(state, sharedDirectory: share, destination: destination?.configuration)
        } catch {
            causes.add(
                .wrongShare, device: device, summary: "the shared directory cannot be opened: \(error)",
                evidence: Evidence(source: .share, path: share, text: "\(error)"))
            return nil
        }
        checked.append("every inode and open handle of the state against \(share), as virtiofsd 1.13's loader opens them")
        if let destination { checked.append("the destination's arguments: \(destination.arguments.joined(separator: " "))") }
        let paths = InodePaths(state)
        let stateEvidence = { (text: String) in Evidence(source: .file, path: file, offset: streamOffset, text: text) }

        for problem in report.fatalProblems {
            switch problem {
            case .optionDisabled(let option):
                remedies.options.insert(option)
                causes.add(
                    .optionMismatch, device: device, summary: "the source negotiated \(option); the destination has it disabled",
                    evidence: stateEvidence("negotiated options: \(report.requiredOptions.joined(separator: ", "))"),
                    Evidence(source: .arguments, path: nil, text: destination?.arguments.joined(separator: " ") ?? ""))
            case .rootFileHandleDiffers, .rootFileHandleUnreadable:
                causes.add(
                    .fileHandleDiffers, device: device, summary: "\(share) is not the directory the source recorded (its file handle differs): a copy",
                    evidence: stateEvidence("inode 1 at payload offset \(problem.payloadOffset): \(problem.message)"))
            case .unresolvedReferences(_, _, _, let drained?):
                causes.add(
                    .refcountDrained, device: device,
                    summary: "inode \(drained) (\(paths.display(drained))) leaves the inode store as its children load: the loader cannot resolve the rest",
                    evidence: stateEvidence("payload offset \(problem.payloadOffset): \(problem.message)"))
            case .handleOnDrainedInode(_, let inode, _):
                causes.add(
                    .refcountDrained, device: device, summary: "a handle is open on inode \(inode) (\(paths.display(inode))), which leaves the inode store as its children load",
                    evidence: stateEvidence("payload offset \(problem.payloadOffset): \(problem.message)"))
            case .unresolvedReferences, .inconsistent:
                causes.add(
                    .damagedState, device: device, summary: "the state contradicts itself: \(problem.message)",
                    evidence: stateEvidence("payload offset \(problem.payloadOffset): \(problem.description)"))
            }
        }

        // Inodes that fail: descriptors, missing paths, changed identities.
        let descriptorErrors: Set<Errno> = [.tooManyOpenFiles, .tooManyOpenFilesInSystem]
        var missingRoots: [PreflightReport.InodeFailure] = []
        var descriptorFailures = 0
        var handleDiffers: [PreflightReport.InodeFailure] = []
        var capabilityFailures = 0
        for failure in report.failingInodes {
            switch failure.cause {
            case .openFailed(let errno) where descriptorErrors.contains(errno): descriptorFailures += 1
            case .fileHandleStale(.openFailed(.notPermitted)): capabilityFailures += 1
            case .openFailed, .sentInvalid, .fileHandleStale: missingRoots.append(failure)
            case .fileHandleDiffers, .fileHandleUnreadable: handleDiffers.append(failure)
            case .parentInvalid: break
            }
        }
        // With a limit applied, preflight counts the descriptors up to where it ran out.
        let everyDescriptor = (destination?.configuration.inodesHoldDescriptors ?? true ? state.inodes.count : 0) + state.handles.count
        remedies.descriptorsNeeded = UInt64(max(report.descriptorsNeeded, everyDescriptor))
        remedies.threadPoolSize = destination?.configuration.threadPoolSize ?? 0
        if descriptorFailures > 0 || (destination?.configuration.guestDescriptorLimit).map({ UInt64(report.descriptorsNeeded) > $0 }) == true {
            let limit = destination?.configuration.guestDescriptorLimit.map(String.init) ?? "fewer"
            causes.add(
                .descriptorLimit, device: device,
                summary: "the load needs \(remedies.descriptorsNeeded) descriptors for the guest's inodes and handles; the destination gives \(limit)",
                evidence: stateEvidence("\(state.inodes.count) inodes, \(state.handles.count) open handles"),
                Evidence(source: .arguments, path: nil, text: destination?.arguments.joined(separator: " ") ?? ""))
        }
        let pathInodes = state.inodes.filter { if case .path = $0.location { return true } else { return false } }.count
        let failingPaths = report.failingInodes.count - descriptorFailures - handleDiffers.count
        if pathInodes >= 10, failingPaths * 10 >= pathInodes * 9 {
            let names = state.inodes.lazy.compactMap { inode -> String? in
                if case .path(VirtiofsdState.rootID, let name) = inode.location { return name }
                return nil
            }.prefix(5)
            causes.add(
                .wrongShare, device: device,
                summary: "\(failingPaths) of the state's \(pathInodes) inodes are not in \(share): the state is of another directory (it holds \(names.joined(separator: ", ")))",
                evidence: Evidence(source: .share, path: share, text: missingRoots.first.map { $0.reason } ?? ""))
        } else if !missingRoots.isEmpty {
            let moved = movedDirectories(missingRoots, state: state, paths: paths, share: share)
            let stillMissing = missingRoots.filter { root in !moved.contains { $0.id == root.id } }
            for rename in moved {
                remedies.renames.append((rename.old, rename.new))
                causes.add(
                    .movedPaths, device: device, summary: "\(rename.old) is not in \(share), but \(rename.new) holds the same entries: it moved",
                    evidence: Evidence(source: .share, path: share, text: "\(rename.new): \(rename.entries) entries of \(rename.old) (inode \(rename.id))"))
            }
            if !stillMissing.isEmpty {
                let handles = report.failingHandles.count
                let shown = stillMissing.prefix(5).map { "\($0.path) (inode \($0.id))" }.joined(separator: ", ")
                causes.add(
                    .missingPaths, device: device,
                    summary: "\(report.failingInodes.count) inodes and \(handles) open handles of the state are not in \(share): \(shown)"
                        + (stillMissing.count > 5 ? " and \(stillMissing.count - 5) more" : ""),
                    evidence: stillMissing.prefix(10).map { Evidence(source: .share, path: share, text: "inode \($0.id): \($0.reason)") })
            }
        }
        if capabilityFailures > 0 {
            causes.add(
                .fileHandleCapability, device: device,
                summary: "\(capabilityFailures) inodes travel as file handles, and the destination virtiofsd cannot open file handles (no CAP_DAC_READ_SEARCH)",
                evidence: Evidence(source: .arguments, path: nil, text: destination?.arguments.joined(separator: " ") ?? ""))
        }
        // File handles that open files outside the share: the load would use those files.
        let outside = report.fileHandleInodes.compactMap { inode -> (id: UInt64, path: String)? in
            if case .outsideShare(let path) = inode.resolution { return (inode.id, path) }
            return nil
        }
        if !outside.isEmpty {
            let source = commonDirectory(outside.map(\.path))
            if let source { remedies.handlesToPaths = source }
            remedies.outsidePaths = outside.prefix(10).map(\.path)
            causes.add(
                .fileHandleOutsideShare, device: device,
                summary: "\(outside.count) inodes travel as file handles that open files outside \(share) (under \(source ?? "another directory")): "
                    + "the destination would serve the guest those files, not the share's",
                evidence: outside.prefix(10).map { Evidence(source: .share, path: share, text: "inode \($0.id): its file handle opens \($0.path)") })
        }
        for failure in handleDiffers.prefix(1) {
            causes.add(
                .fileHandleDiffers, device: device, summary: "\(handleDiffers.count) inodes of \(share) are not the files the source recorded (file handles differ): a copy",
                evidence: stateEvidence("inode \(failure.id): \(failure.reason)"))
        }
        let reopen = report.failingHandles.filter {
            if case .reopenFailed(let errno) = $0.cause { return !descriptorErrors.contains(errno) } else { return false }
        }
        if !reopen.isEmpty {
            causes.add(
                .handleReopenFailed, device: device, summary: "\(reopen.count) open files cannot be reopened with their flags on \(share)",
                evidence: reopen.prefix(10).map { Evidence(source: .share, path: share, text: $0.reason) })
        }
        return report
    }

    /// A missing directory found elsewhere in the share.
    struct MovedDirectory {
        let id: UInt64
        let old: String
        let new: String
        let entries: Int
    }

    /// For each missing directory with entries in the state, a directory of
    /// the share (at most 4 levels down, 20,000 directories and 200,000
    /// entries looked at) that holds every one of them and the entries under
    /// them (up to 200), and is no path the state already holds.
    static func movedDirectories(_ missing: [PreflightReport.InodeFailure], state: VirtiofsdState, paths: InodePaths, share: String) -> [MovedDirectory] {
        var children: [UInt64: Set<String>] = [:]
        var byParent: [UInt64: [(UInt64, String)]] = [:]
        for inode in state.inodes {
            if case .path(let parent, let name) = inode.location {
                children[parent, default: []].insert(name)
                byParent[parent, default: []].append((inode.id, name))
            }
        }
        let statePaths = Set(paths.resolutions.values.compactMap { if case .path(let path) = $0 { return path } else { return nil } })
        /// The entries two levels under `id`, relative to it (at most 200).
        func grandchildren(_ id: UInt64) -> [String] {
            (byParent[id] ?? []).flatMap { child in (byParent[child.0] ?? []).map { child.1 + "/" + $0.1 } }.prefix(200).map { $0 }
        }
        let wanted = missing.filter { (children[$0.id]?.count ?? 0) > 0 }.prefix(20)
        guard !wanted.isEmpty else { return [] }
        let files = FileManager.default
        var found: [MovedDirectory] = []
        var queue: [(String, Int)] = [("", 0)]
        var looked = 0, entriesSeen = 0
        var remaining = Array(wanted)
        while !queue.isEmpty, looked < 20_000, entriesSeen < 200_000, !remaining.isEmpty {
            let (relative, depth) = queue.removeFirst()
            looked += 1
            let absolute = relative.isEmpty ? share : share + "/" + relative
            guard let entries = try? files.contentsOfDirectory(atPath: absolute) else { continue }
            entriesSeen += entries.count
            let names = Set(entries)
            if !relative.isEmpty, !statePaths.contains(relative),
                let index = remaining.firstIndex(where: { failure in
                    children[failure.id]!.isSubset(of: names)
                        && grandchildren(failure.id).allSatisfy { Files.type(at: absolute + "/" + $0) != nil }
                })
            {
                let failure = remaining.remove(at: index)
                found.append(MovedDirectory(id: failure.id, old: failure.path, new: relative, entries: children[failure.id]!.count))
            }
            guard depth < 4 else { continue }
            for name in entries.sorted() {
                let child = relative.isEmpty ? name : relative + "/" + name
                if Files.type(at: share + "/" + child) == .directory {
                    queue.append((child, depth + 1))
                }
            }
        }
        return found
    }
}
