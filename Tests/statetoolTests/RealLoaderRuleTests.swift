import Foundation
import Glibc
import TestSupport
import Testing
import VirtiofsdState

/// preflight's rules against the real virtiofsd's loader: states built here are replayed
/// into virtiofsd (1.13 and 1.14) with `--migration-on-error=abort`, and preflight must
/// give its verdict.
@Suite(.serialized) final class RealLoaderRuleTests {
    let scratch: ScratchDirectory

    init() throws {
        scratch = try ScratchDirectory("loader-rules")
    }

    private func path(_ name: String) -> String { scratch.path(name) }

    /// The stream of a V1 state of `inodes` and `handles`, framed by statetool.
    private func stream(_ name: String, inodes: [VirtiofsdState.Inode], handles: [VirtiofsdState.Handle] = []) throws -> String {
        let state = VirtiofsdState(
            version: .v1, inodes: inodes, nextInode: (inodes.map(\.id).max() ?? 1) + 1, handles: handles,
            nextHandle: (handles.map(\.id).max() ?? 0) + 1,
            options: .init(writeback: false, announceSubmounts: false, posixACL: false, supplementaryGroupExtension: false),
            mountPaths: [])
        let payload = path("\(name).payload"), stream = path("\(name).state")
        try Data(state.encoded()).write(to: URL(fileURLWithPath: payload))
        let framed = try StatetoolRunner.run(["frame", payload, "-o", stream])
        try #require(framed.status == 0, "\(framed.stderr)")
        return stream
    }

    /// Replays `stream` into a virtiofsd (abort mode) serving `share`: its status and the log.
    private func replay(_ stream: String, share: String, on generation: PeerGeneration) throws -> StatetoolRunner.Result {
        let socket = stream + ".sock", log = stream + ".log"
        let virtiofsd = try generation.startVirtiofsd(sharedDirectory: share, socket: socket, log: log, options: ["--migration-on-error=abort"])
        defer { RealPeers.stop(virtiofsd) }
        return try StatetoolRunner.run(["replay", "--socket", socket, "--backend-log", log, stream])
    }

    /// A share holding `files` (regular files) at its top.
    private func share(_ name: String, files: [String]) throws -> String {
        let share = path(name)
        try FileManager.default.createDirectory(atPath: share, withIntermediateDirectories: true)
        for file in files { try Data(file.utf8).write(to: URL(fileURLWithPath: share + "/" + file)) }
        return share
    }

    /// Each child that loads takes one of its parent's references; at zero the parent
    /// leaves the inode store. Measured: a root with refcount 2 and 20 children is refused
    /// (`Unresolved references between serialized inodes`); 2 with 2, and 21 with 20, load.
    @Test(arguments: PeerGeneration.all, [(UInt64(2), 20, false), (UInt64(2), 2, true), (UInt64(21), 20, true)])
    func refcountsDrainAsTheRealLoaderDrainsThem(generation: PeerGeneration, case: (rootRefcount: UInt64, children: Int, loads: Bool)) throws {
        try generation.require()
        let (rootRefcount, children, loads) = `case`
        let names = (0..<children).map { "child-\($0)" }
        let share = try share("share-\(rootRefcount)-\(children)", files: names)
        let inodes = [VirtiofsdState.Inode(id: 1, refcount: rootRefcount, location: .root)]
            + names.enumerated().map { .init(id: UInt64(2 + $0.offset), refcount: 1, location: .path(parent: 1, name: $0.element)) }
        let stream = try stream("refcount-\(rootRefcount)-\(children)", inodes: inodes)

        let replayed = try replay(stream, share: share, on: generation)
        #expect(replayed.status == (loads ? 0 : 3), "\(replayed.stdout)\(replayed.stderr)")
        if !loads { #expect(replayed.stderr.contains("Unresolved references between serialized inodes")) }

        let preflight = try StatetoolRunner.run(["preflight", "--json", "--shared-dir", share, stream])
        #expect(preflight.status == (loads ? 0 : 1), "\(preflight.stderr)")
        let report = try preflight.jsonObject()
        #expect(report["clean"] as? Bool == loads)
        #expect((report["fatalProblems"] as? [[String: Any]])?.compactMap { $0["kind"] as? String } == (loads ? [] : ["unresolved-references"]))
        #expect(report["drainedInodes"] as? [Int] == (rootRefcount == UInt64(children) || !loads ? [1] : []))

        // diagnose, from the state, the share and the real log: refcount-drained, nothing to rewrite.
        if !loads {
            let diagnosed = try StatetoolRunner.run(["diagnose", "--json", stream, "--shared-dir", share, "--log", stream + ".log"])
            let json = try diagnosed.jsonObject()
            #expect(json["verdict"] as? String == "unrecoverable", "\(diagnosed.stdout)")
            #expect((json["causes"] as? [[String: Any]])?.compactMap { $0["kind"] as? String } == ["refcount-drained"], "\(diagnosed.stdout)")
        }
    }

    /// Handles are reopened from their inodes with their recorded flags: a file that became
    /// a directory refuses write flags (`Is a directory`), a name that is now a symbolic link
    /// is no regular file or directory (`Bad file descriptor`); reading a directory works.
    @Test(arguments: PeerGeneration.all, [("now-a-directory", O_WRONLY, "Is a directory (os error 21)"), ("now-a-link", O_RDONLY, "Bad file descriptor (os error 9)"),
                      ("read-directory", O_RDONLY, nil)])
    func handlesReopenAsTheRealLoaderReopensThem(generation: PeerGeneration, case: (name: String, flags: Int32, error: String?)) throws {
        try generation.require()
        let (name, flags, error) = `case`
        let share = try share("share-\(name)", files: ["target"])
        if name == "now-a-link" {
            try FileManager.default.createSymbolicLink(atPath: share + "/" + name, withDestinationPath: "target")
        } else {
            try FileManager.default.createDirectory(atPath: share + "/" + name, withIntermediateDirectories: true)
        }
        let stream = try stream(
            "handle-\(name)", inodes: [.init(id: 1, refcount: 2, location: .root), .init(id: 2, refcount: 1, location: .path(parent: 1, name: name))],
            handles: [.init(id: 7, inode: 2, flags: flags)])

        let replayed = try replay(stream, share: share, on: generation)
        #expect(replayed.status == (error == nil ? 0 : 3), "\(replayed.stdout)\(replayed.stderr)")
        if let error { #expect(replayed.stderr.contains("as handle 7: \(error)"), "\(replayed.stderr)") }

        let preflight = try StatetoolRunner.run(["preflight", "--json", "--shared-dir", share, stream])
        #expect(preflight.status == (error == nil ? 0 : 1), "\(preflight.stderr)")
        let report = try preflight.jsonObject()
        #expect(report["failingHandles"] as? [Int] == (error == nil ? [] : [7]))
        if error != nil {
            let reason = (report["handleFailures"] as? [[String: Any]])?.first?["reason"] as? String
            #expect(reason?.hasPrefix("Opening inode 2 (\(name)) as handle 7: ") == true, "\(reason ?? "none")")

            // diagnose names it from the state and the real log, and its fix loads into the real virtiofsd.
            let arguments = ["diagnose", stream, "--shared-dir", share, "--log", stream + ".log"]
            let json = try StatetoolRunner.run(arguments + ["--json"]).jsonObject()
            #expect(json["verdict"] as? String == "fixable")
            #expect((json["causes"] as? [[String: Any]])?.compactMap { $0["kind"] as? String } == ["handle-reopen-failed"])
            let fixed = try StatetoolRunner.run(arguments + ["--fix", "-o", stream + ".fixed"])
            #expect(fixed.status == 0, "\(fixed.stderr)")
            let reloaded = try replay(stream + ".fixed", share: share, on: generation)
            #expect(reloaded.status == 0, "\(reloaded.stdout)\(reloaded.stderr)")
        }
    }

    /// A handle open for writing on a file that became immutable (`chattr +i`) fails to
    /// reopen with `Operation not permitted`, and on a share mounted read-only with
    /// `Read-only file system`; preflight reopens it the same way and names the same handle.
    @Test(arguments: PeerGeneration.all, ["immutable", "read-only-share"])
    func writeHandlesOnFilesThatRefuseWritingFailAsTheRealLoaderFindsThem(generation: PeerGeneration, damage: String) throws {
        try generation.require()
        let files = try share("share-\(damage)", files: ["target"])
        var share = files
        if damage == "immutable" {
            let locked = try ProcessRunner.run("/usr/bin/chattr", ["+i", files + "/target"])
            try #require(locked.status == 0, "chattr +i: \(locked.stderr)")
        } else {
            share = path("read-only-\(generation.name)")
            try FileManager.default.createDirectory(atPath: share, withIntermediateDirectories: true)
            let bound = try ProcessRunner.run("/bin/mount", ["--bind", "-o", "ro", files, share])
            try #require(bound.status == 0, "mount --bind -o ro: \(bound.stderr)")
        }
        defer {
            if damage == "immutable" {
                _ = try? ProcessRunner.run("/usr/bin/chattr", ["-i", files + "/target"])
            } else {
                _ = try? ProcessRunner.run("/bin/umount", [share])
            }
        }
        let stream = try stream(
            "write-\(damage)", inodes: [.init(id: 1, refcount: 2, location: .root), .init(id: 2, refcount: 1, location: .path(parent: 1, name: "target"))],
            handles: [.init(id: 7, inode: 2, flags: O_WRONLY)])
        let error = damage == "immutable" ? "Operation not permitted (os error 1)" : "Read-only file system (os error 30)"

        let replayed = try replay(stream, share: share, on: generation)
        #expect(replayed.status == 3, "\(replayed.stdout)\(replayed.stderr)")
        #expect(replayed.stderr.contains("as handle 7: \(error)"), "\(replayed.stderr)")

        let preflight = try StatetoolRunner.run(["preflight", "--json", "--shared-dir", share, stream])
        #expect(preflight.status == 1, "\(preflight.stderr)")
        let report = try preflight.jsonObject()
        #expect(report["failingHandles"] as? [Int] == [7])
        let reason = (report["handleFailures"] as? [[String: Any]])?.first?["reason"] as? String
        #expect(reason == "Opening inode 2 (target) as handle 7: \(error.prefix { $0 != "(" }.trimmingCharacters(in: .whitespaces))", "\(reason ?? "none")")
    }

    /// A state whose source negotiated announce-submounts, into a destination started
    /// without it: refused before any inode (`Migration source wants announce-submounts
    /// enabled, but it is disabled on the destination`); with it, taken.
    @Test(arguments: PeerGeneration.all, [("--no-announce-submounts", false), ("--announce-submounts", true)])
    func negotiatedOptionsAsTheRealLoaderChecksThem(generation: PeerGeneration, case: (option: String, loads: Bool)) throws {
        try generation.require()
        let (option, loads) = `case`
        let share = try share("share-options\(option)", files: ["a"])
        let state = VirtiofsdState(
            version: .v1, inodes: [.init(id: 1, refcount: 2, location: .root), .init(id: 2, refcount: 1, location: .path(parent: 1, name: "a"))],
            nextInode: 3, handles: [], nextHandle: 1,
            options: .init(writeback: false, announceSubmounts: true, posixACL: false, supplementaryGroupExtension: false), mountPaths: [])
        let payload = path("options\(option).payload"), stream = path("options\(option).state")
        try Data(state.encoded()).write(to: URL(fileURLWithPath: payload))
        #expect(try StatetoolRunner.run(["frame", payload, "-o", stream]).status == 0)
        let socket = stream + ".sock", log = stream + ".log"
        let virtiofsd = try generation.startVirtiofsd(
            sharedDirectory: share, socket: socket, log: log, options: ["--migration-on-error=abort", option])
        defer { RealPeers.stop(virtiofsd) }
        let replayed = try StatetoolRunner.run(["replay", "--socket", socket, "--backend-log", log, stream])
        #expect(replayed.status == (loads ? 0 : 3), "\(replayed.stdout)\(replayed.stderr)")
        let message = "Migration source wants announce-submounts enabled, but it is disabled on the destination"
        if !loads { #expect(replayed.stderr.contains(message), "\(replayed.stderr)") }

        let preflight = try StatetoolRunner.run(["preflight", "--json", "--shared-dir", share, "--destination-args=\(option)", stream])
        #expect(preflight.status == (loads ? 0 : 1), "\(preflight.stderr)")
        let report = try preflight.jsonObject()
        #expect(report["requiredOptions"] as? [String] == ["announce-submounts"])
        let fatal = report["fatalProblems"] as? [[String: Any]]
        #expect(fatal?.compactMap { $0["kind"] as? String } == (loads ? [] : ["option-mismatch"]))
        if !loads { #expect(fatal?.first?["message"] as? String == message) }
    }

    /// Without inode file handles each inode holds a descriptor for the guest, and virtiofsd
    /// allows its --rlimit-nofile less 610: with 700, 90. The first inode past them fails
    /// (`Too many open files in system`), and preflight names the same one.
    @Test(arguments: PeerGeneration.all)
    func theDescriptorLimitAsTheRealLoaderAppliesIt(generation: PeerGeneration) throws {
        try generation.require()
        let names = (0..<120).map { "child-\($0)" }
        let share = try share("share-descriptors", files: names)
        let inodes = [VirtiofsdState.Inode(id: 1, refcount: 121, location: .root)]
            + names.enumerated().map { .init(id: UInt64(2 + $0.offset), refcount: 1, location: .path(parent: 1, name: $0.element)) }
        let stream = try stream("descriptors", inodes: inodes)
        let socket = stream + ".sock", log = stream + ".log"
        let virtiofsd = try generation.startVirtiofsd(
            sharedDirectory: share, socket: socket, log: log,
            options: ["--migration-on-error=abort", "--inode-file-handles=never", "--rlimit-nofile=700"])
        defer { RealPeers.stop(virtiofsd) }
        let replayed = try StatetoolRunner.run(["replay", "--socket", socket, "--backend-log", log, stream])
        #expect(replayed.status == 3, "\(replayed.stdout)\(replayed.stderr)")
        #expect(replayed.stderr.contains("No more file descriptors available to the guest (0 available out of 90 initially)"), "\(replayed.stderr)")
        let failed = replayed.stderr.split(separator: "\n").first { $0.contains("Too many open files in system") }
        let failedInode = failed.flatMap { line in line.range(of: "Inode ").map { Int(line[$0.upperBound...].prefix { $0.isNumber }) } } ?? nil

        let preflight = try StatetoolRunner.run([
            "preflight", "--json", "--shared-dir", share, "--destination-args=--inode-file-handles=never --rlimit-nofile=700", stream,
        ])
        #expect(preflight.status == 1, "\(preflight.stderr)")
        let report = try preflight.jsonObject()
        #expect(report["descriptorsNeeded"] as? Int == 121)
        let first = report["firstFailure"] as? [String: Any]
        #expect(first?["id"] as? Int == failedInode, "\(replayed.stderr)")
        #expect((first?["reason"] as? String)?.hasSuffix(": Too many open files in system") == true)
        #expect((report["failingInodes"] as? [Int])?.count == 31)
    }

    /// virtiofsd passes names to openat as they are: without its namespace sandbox it
    /// loads `..` under the root and a path through a symbolic link out of the share.
    /// preflight agrees that the state loads, and names those inodes as resolving outside.
    @Test(arguments: PeerGeneration.all)
    func namesThatLeaveTheShareLoadAndAreFound(generation: PeerGeneration) throws {
        try generation.require()
        let share = try share("share-names", files: ["c"])
        try FileManager.default.createSymbolicLink(atPath: share + "/escape", withDestinationPath: "/etc")
        let stream = try stream(
            "names",
            inodes: [
                .init(id: 1, refcount: 4, location: .root), .init(id: 2, refcount: 1, location: .path(parent: 1, name: "..")),
                .init(id: 3, refcount: 1, location: .path(parent: 1, name: "escape/passwd")),
                .init(id: 4, refcount: 1, location: .path(parent: 1, name: "./c")),
            ])
        let replayed = try replay(stream, share: share, on: generation)
        #expect(replayed.status == 0, "\(replayed.stdout)\(replayed.stderr)")

        let preflight = try StatetoolRunner.run(["preflight", "--json", "--shared-dir", share, stream])
        #expect(preflight.status == 0, "\(preflight.stderr)")
        let report = try preflight.jsonObject()
        #expect((report["outsideShare"] as? [[String: Any]])?.compactMap { $0["id"] as? Int }.sorted() == [2, 3])
        #expect(report["failingInodes"] as? [Int] == [])
    }
}
