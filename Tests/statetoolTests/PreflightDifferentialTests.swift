import Foundation
import StatetoolKit
import Glibc
import TestSupport
import Testing
import VirtiofsdState

/// preflight against the real virtiofsd on generated cases: a share and a state as a
/// guest leaves them (every directory looked up, some files, refcounts that count the
/// children and the guest's lookups, handles open for reading or writing), then damage
/// on the share (files and directories removed, moved, turned into directories or
/// symbolic links) and in the state (refcounts lowered, inodes lost, names `.`). Each
/// state is replayed into virtiofsd in `abort` and in `guest-error` mode and its log
/// read; preflight's `--json` must say the same: clean iff `abort` accepts, the inode
/// or handle `abort` stops at, the invalid inodes and handles `guest-error` lists, and
/// fatal iff `guest-error` refuses. And what `retarget --drop-missing` writes for a state
/// `abort` refuses (nothing fatal) must load in `abort` mode.
///
/// `STATETOOL_DIFFERENTIAL_CASES` sets the number of cases (CI: 60), and
/// `STATETOOL_DIFFERENTIAL_SEED` the first seed, for longer runs (Scripts/fuzz).
@Suite(.serialized) final class PreflightDifferentialTests {
    let scratch: ScratchDirectory

    init() throws {
        scratch = try ScratchDirectory("differential")
    }

    static let cases = Int(ProcessInfo.processInfo.environment["STATETOOL_DIFFERENTIAL_CASES"] ?? "") ?? 60
    static let firstSeed = UInt64(ProcessInfo.processInfo.environment["STATETOOL_DIFFERENTIAL_SEED"] ?? "") ?? 1

    /// Seeds of cases that once disagreed, kept as regressions: 5790, a directory whose
    /// refcount 0 drains at its only child, a handle on it (`Inode 9 not found` ends the
    /// load before a later handle that fails to reopen).
    static let regressions: [UInt64] = [5790]

    @Test(arguments: PeerGeneration.all)
    func casesThatOnceDisagreedAgree(generation: PeerGeneration) throws {
        try generation.require()
        let outcome = try run(seeds: Self.regressions, on: generation)
        #expect(outcome.disagreements.isEmpty, "\(outcome.disagreements.joined(separator: "\n"))")
    }

    @Test(arguments: PeerGeneration.all)
    func preflightSaysWhatTheRealLoaderDoes(generation: PeerGeneration) throws {
        try generation.require()
        let outcome = try run(seeds: Array(Self.firstSeed..<(Self.firstSeed + UInt64(Self.cases))), on: generation)
        print("differential, virtiofsd \(generation.virtiofsdVersion): \(Self.cases) cases from seed \(Self.firstSeed): \(outcome.summary); \(outcome.disagreements.count) disagreements")
        // The generator must reach every verdict, or the comparison proves little.
        #expect(outcome.refusedByAbort > 0 && outcome.refusedByGuestError > 0 && outcome.withInvalidInodes > 0 && outcome.withInvalidHandles > 0)
        #expect(outcome.disagreements.isEmpty, "\(outcome.disagreements.count) disagreements:\n\(outcome.disagreements.joined(separator: "\n"))")
    }

    /// What a run of cases found.
    struct Outcome {
        var disagreements: [String] = []
        var refusedByAbort = 0, withInvalidInodes = 0, withInvalidHandles = 0, refusedByGuestError = 0, retargeted = 0

        var summary: String {
            "abort refused \(refusedByAbort), guest-error refused \(refusedByGuestError), invalid inodes in \(withInvalidInodes), "
                + "invalid handles in \(withInvalidHandles), retargeted and loaded \(retargeted)"
        }
    }

    private func run(seeds: [UInt64], on generation: PeerGeneration) throws -> Outcome {
        var outcome = Outcome()
        for seed in seeds {
            let generated = try GeneratedCase(seed: seed, in: scratch.url("case-\(seed)"))
            let abort = try loadWithVirtiofsd(generated, mode: "abort", on: generation)
            let guestError = try loadWithVirtiofsd(generated, mode: "guest-error", on: generation)
            let preflight = try StatetoolRunner.run(["preflight", "--json", "--shared-dir", generated.share, generated.stream])
            guard let report = try? preflight.jsonObject() else {
                outcome.disagreements.append("seed \(seed): preflight printed no report: \(preflight.stderr)")
                continue
            }
            outcome.refusedByAbort += abort.accepted ? 0 : 1
            outcome.refusedByGuestError += guestError.failure == nil ? 0 : 1
            outcome.withInvalidInodes += guestError.invalidInodes.isEmpty ? 0 : 1
            outcome.withInvalidHandles += guestError.invalidHandles.isEmpty ? 0 : 1
            outcome.disagreements += compare(report, abort: abort, guestError: guestError).map {
                "seed \(seed) (\(generated.damage.joined(separator: "; "))): \($0)"
            }
            // What retarget --drop-missing writes for a state abort refuses must load in abort mode.
            let fatal = (report["fatalProblems"] as? [[String: Any]]) ?? []
            if !abort.accepted && fatal.isEmpty {
                outcome.retargeted += 1
                let retargeted = generated.stream + ".retargeted"
                let result = try StatetoolRunner.run(["retarget", "--drop-missing", "--shared-dir", generated.share, generated.stream, "-o", retargeted])
                if result.status != 0 {
                    outcome.disagreements.append("seed \(seed): retarget --drop-missing refused: \(result.stderr)")
                } else if !(try loadWithVirtiofsd(GeneratedCase(share: generated.share, stream: retargeted), mode: "abort", on: generation)).accepted {
                    outcome.disagreements.append("seed \(seed) (\(generated.damage.joined(separator: "; "))): retarget --drop-missing wrote a state abort refuses")
                }
            }
            if outcome.disagreements.count > 10 { break }
        }
        return outcome
    }

    /// What virtiofsd did with a state: accepted, and the lines of its log that say why not.
    struct Verdict {
        let accepted: Bool
        let log: [Substring]

        /// `Failed to load state: REST`, the reason `abort` stopped: the line
        /// diagnose reads as virtiofsd's `Migration failed:`.
        var failure: String? {
            log.lazy.compactMap { line -> String? in
                guard case .loadStopped = LogMessage(line: line), let reason = line.firstRange(of: "Failed to load state: ") else { return nil }
                return String(line[reason.upperBound...])
            }.first
        }

        /// The inodes guest-error mode marked invalid (`Invalid inode N indexed: ...`).
        var invalidInodes: Set<Int> {
            Set(log.compactMap { if case .invalidInode(let id, _)? = LogMessage(line: $0) { return Int(id) } else { return nil } })
        }

        /// The handles guest-error mode marked invalid (`Invalid handle N is open in guest: ...`).
        var invalidHandles: Set<Int> {
            Set(log.compactMap { if case .invalidHandle(let id, _)? = LogMessage(line: $0) { return Int(id) } else { return nil } })
        }
    }

    private func loadWithVirtiofsd(_ generated: GeneratedCase, mode: String, on generation: PeerGeneration) throws -> Verdict {
        let socket = generated.stream + ".\(mode).sock", log = generated.stream + ".\(mode).log"
        let virtiofsd = try generation.startVirtiofsd(
            sharedDirectory: generated.share, socket: socket, log: log, options: ["--migration-on-error=\(mode)"])
        let replayed = try StatetoolRunner.run(["replay", "--timeout", "20", "--socket", socket, generated.stream])
        RealPeers.stop(virtiofsd)
        // 0: taken, 3: refused (CHECK_DEVICE_STATE not 0); anything else is the harness's
        // failure to ask, which is no verdict of virtiofsd's.
        #expect(replayed.status == 0 || replayed.status == 3, "replay into virtiofsd \(generation.virtiofsdVersion) failed: \(replayed.stderr)")
        let lines = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n") ?? []
        return Verdict(accepted: replayed.status == 0, log: lines)
    }

    private func compare(_ report: [String: Any], abort: Verdict, guestError: Verdict) -> [String] {
        var found: [String] = []
        let clean = report["clean"] as? Bool ?? false
        let failingInodes = report["failingInodes"] as? [Int] ?? []
        let failingHandles = report["failingHandles"] as? [Int] ?? []
        let fatal = (report["fatalProblems"] as? [[String: Any]])?.compactMap { $0["kind"] as? String } ?? []
        // abort: accepted iff clean; otherwise the first failure is the one it stopped at.
        if abort.accepted != clean {
            found.append("abort \(abort.accepted ? "accepted" : "refused: \(abort.failure ?? "?")"), preflight says \(clean ? "clean" : "not clean") \(failingInodes.prefix(3)) \(failingHandles.prefix(3)) \(fatal)")
        } else if !abort.accepted, let failure = abort.failure {
            if let first = failingInodes.first {
                if !failure.hasPrefix("Inode \(first):") { found.append("abort stopped at \"\(failure)\", preflight's first failing inode is \(first)") }
            } else if fatal.contains("unresolved-references") {
                if !failure.hasPrefix("Unresolved references") { found.append("abort stopped at \"\(failure)\", preflight says unresolved references") }
            } else if let first = failingHandles.first {
                if !failure.contains("as handle \(first):") { found.append("abort stopped at \"\(failure)\", preflight's first failing handle is \(first)") }
            } else if let drained = (report["fatalProblems"] as? [[String: Any]])?.first(where: { $0["kind"] as? String == "handle-on-drained-inode" }) {
                let message = drained["message"] as? String ?? ""
                if !message.hasPrefix(failure) { found.append("abort stopped at \"\(failure)\", preflight says \(message)") }
            }
        }
        // guest-error: the same invalid inodes and handles; refused iff something is fatal.
        let refused = guestError.failure != nil
        if refused != !fatal.isEmpty {
            found.append("guest-error \(refused ? "refused: \(guestError.failure!)" : "loaded"), preflight's fatal problems: \(fatal)")
        }
        if !refused {
            let invalidInodes = guestError.invalidInodes
            if invalidInodes != Set(failingInodes) {
                found.append("guest-error invalid inodes \(invalidInodes.sorted()), preflight \(failingInodes.sorted())")
            }
            let invalidHandles = guestError.invalidHandles
            if invalidHandles != Set(failingHandles) {
                found.append("guest-error invalid handles \(invalidHandles.sorted()), preflight \(failingHandles.sorted())")
            }
        }
        return found
    }
}

/// One generated share and state, damaged, written to `directory`.
struct GeneratedCase {
    let share: String
    let stream: String
    private(set) var damage: [String] = []

    /// A case of an existing share and stream.
    init(share: String, stream: String) {
        self.share = share
        self.stream = stream
    }

    init(seed: UInt64, in directory: URL) throws {
        var random = SeededGenerator(seed: seed)
        let files = FileManager.default
        share = directory.appendingPathComponent("share").path
        try files.createDirectory(atPath: share, withIntermediateDirectories: true)

        // The tree: directories (parents first) and files.
        var directories = [""]
        var regularFiles: [String] = []
        for top in 0..<Int.random(in: 2...4, using: &random) {
            let name = "d\(top)"
            directories.append(name)
            for sub in 0..<Int.random(in: 0...2, using: &random) { directories.append("\(name)/s\(sub)") }
        }
        for directory in directories {
            for index in 0..<Int.random(in: 1...3, using: &random) {
                regularFiles.append((directory.isEmpty ? "" : directory + "/") + "f\(index)")
            }
        }
        for directory in directories.dropFirst() { try files.createDirectory(atPath: share + "/" + directory, withIntermediateDirectories: true) }
        for file in regularFiles { try Data(file.utf8).write(to: URL(fileURLWithPath: share + "/" + file)) }

        // The state: every directory and some files, ids in a shuffled order.
        let lookedUp = directories.dropFirst() + regularFiles.filter { _ in Bool.random(using: &random) }
        var ids: [String: UInt64] = ["": 1]
        for (offset, path) in lookedUp.shuffled(using: &random).enumerated() { ids[path] = UInt64(2 + offset) }
        func parent(of path: String) -> String { path.split(separator: "/").dropLast().joined(separator: "/") }
        var children: [String: Int] = [:]
        for path in lookedUp { children[parent(of: path), default: 0] += 1 }
        var inodes = [VirtiofsdState.Inode(id: 1, refcount: UInt64(children[""] ?? 0) + 1, location: .root)]
        for path in lookedUp.sorted(by: { ids[$0]! < ids[$1]! }) {
            let lookups = UInt64.random(in: 1...2, using: &random)
            inodes.append(.init(
                id: ids[path]!, refcount: UInt64(children[path] ?? 0) + lookups,
                location: .path(parent: ids[parent(of: path)]!, name: String(path.split(separator: "/").last!))))
        }
        var handles: [VirtiofsdState.Handle] = []
        for path in lookedUp where Int.random(in: 0..<3, using: &random) == 0 {
            let isDirectory = directories.contains(path)
            let flags = isDirectory ? O_RDONLY | O_DIRECTORY : [O_RDONLY, O_WRONLY, O_RDWR].randomElement(using: &random)!
            handles.append(.init(id: UInt64(100 + handles.count), inode: ids[path]!, flags: flags))
        }

        // Damage: on the share and in the state.
        for _ in 0..<Int.random(in: 0...2, using: &random) {
            let file = regularFiles.randomElement(using: &random)!
            let directory = directories.dropFirst().randomElement(using: &random)!
            switch Int.random(in: 0..<8, using: &random) {
            case 0:
                try? files.removeItem(atPath: share + "/" + file)
                damage.append("removed \(file)")
            case 1:
                try? files.removeItem(atPath: share + "/" + directory)
                damage.append("removed \(directory)/")
            case 2:
                try? files.moveItem(atPath: share + "/" + directory, toPath: share + "/" + directory + "-moved")
                damage.append("moved \(directory)/")
            case 3:
                try? files.removeItem(atPath: share + "/" + file)
                try? files.createDirectory(atPath: share + "/" + file, withIntermediateDirectories: true)
                damage.append("\(file) became a directory")
            case 4:
                try? files.removeItem(atPath: share + "/" + file)
                try? files.createSymbolicLink(atPath: share + "/" + file, withDestinationPath: "f0")
                damage.append("\(file) became a symbolic link")
            case 5:
                // A directory's refcount lowered: to its children (it drains) or below (its last children never load).
                guard let index = inodes.firstIndex(where: { $0.id == ids[directory] }) else { break }
                let count = UInt64(children[directory] ?? 0)
                guard count > 0 else { break }
                inodes[index].refcount = Bool.random(using: &random) ? count : count - 1
                damage.append("refcount of \(directory) \(inodes[index].refcount) for \(count) children")
            case 6:
                guard let index = inodes.indices.dropFirst().randomElement(using: &random) else { break }
                inodes[index].location = .invalid
                damage.append("inode \(inodes[index].id) sent invalid")
            default:
                guard let index = inodes.indices.dropFirst().randomElement(using: &random),
                      case .path(let parent, _) = inodes[index].location else { break }
                inodes[index].location = .path(parent: parent, name: ".")
                damage.append("inode \(inodes[index].id) named .")
            }
        }

        let state = VirtiofsdState(
            version: .v1, inodes: inodes, nextInode: UInt64(2 + lookedUp.count), handles: handles, nextHandle: UInt64(100 + handles.count),
            options: .init(writeback: false, announceSubmounts: false, posixACL: false, supplementaryGroupExtension: false), mountPaths: [])
        let payload = directory.appendingPathComponent("state.payload").path
        stream = directory.appendingPathComponent("state.state").path
        try Data(state.encoded()).write(to: URL(fileURLWithPath: payload))
        let framed = try StatetoolRunner.run(["frame", payload, "-o", stream])
        try #require(framed.status == 0, "\(framed.stderr)")
    }
}
