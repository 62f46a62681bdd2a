import Foundation
import StateStream
import TestSupport
import Testing
import VhostUser
import VirtiofsdState

/// File-handle inodes (`--migration-mode=file-handles`) against the real virtiofsd (1.13 and 1.14): a state
/// it saves in that mode from a share, restored onto a copy of the share on the same file system,
/// loads and serves the original files (preflight: resolving-outside-share);
/// `retarget --handles-to-paths ORIGINAL` makes it a path state that loads onto the copy; a file
/// deleted since makes its handle stale, where the real loader stops.
@Suite(.serialized) final class FileHandleInodeTests {
    let scratch: ScratchDirectory

    init() throws {
        scratch = try ScratchDirectory("file-handles")
    }

    private func path(_ name: String) -> String { scratch.path(name) }

    /// `original`: `dir/file.txt`, `dir/deeper/leaf.txt`, `hello.txt`, `only-original.txt`.
    private func makeOriginal() throws -> String {
        let original = path("original")
        try FileManager.default.createDirectory(atPath: original + "/dir/deeper", withIntermediateDirectories: true)
        for file in ["dir/file.txt", "dir/deeper/leaf.txt", "hello.txt", "only-original.txt"] {
            try Data("\(file)\n".utf8).write(to: URL(fileURLWithPath: original + "/" + file))
        }
        return original
    }

    /// A copy of `original` on the same file system (new inodes), without `only-original.txt`.
    private func copy(of original: String) throws -> String {
        let copy = path("copy")
        let copied = try ProcessRunner.run("/bin/cp", ["-a", original, copy])
        try #require(copied.status == 0, "\(copied.stderr)")
        try FileManager.default.removeItem(atPath: copy + "/only-original.txt")
        return copy
    }

    /// The find-paths state a guest leaves after looking up `dir/file.txt`, `dir/deeper/leaf.txt`
    /// and `only-original.txt` (one inode per component), with `dir/file.txt` open; refcounts
    /// count one reference per child, as a find-paths source writes them.
    private static let pathState = VirtiofsdState(
        version: .v2,
        inodes: [
            .init(id: 1, refcount: 3, location: .root),
            .init(id: 2, refcount: 3, location: .path(parent: 1, name: "dir")),
            .init(id: 3, refcount: 1, location: .path(parent: 2, name: "file.txt")),
            .init(id: 4, refcount: 2, location: .path(parent: 2, name: "deeper")),
            .init(id: 5, refcount: 1, location: .path(parent: 4, name: "leaf.txt")),
            .init(id: 6, refcount: 1, location: .path(parent: 1, name: "only-original.txt")),
        ],
        nextInode: 7, handles: [.init(id: 10, inode: 3, flags: 0o100000)], nextHandle: 11,
        options: .init(writeback: false, announceSubmounts: false, posixACL: false, supplementaryGroupExtension: false),
        mountPaths: [])

    /// A state the real virtiofsd writes in `--migration-mode=file-handles`: it serves `share`,
    /// takes ``pathState`` (so it holds those inodes as a guest's lookups leave them) and saves
    /// on the same connection. Returns the saved state stream's path.
    private func realFileHandleState(of share: String, on generation: PeerGeneration) throws -> String {
        let socket = path("source.sock"), log = path("source.log")
        let virtiofsd = try generation.startVirtiofsd(
            sharedDirectory: share, socket: socket, log: log, options: ["--migration-mode=file-handles", "--modcaps=+dac_read_search"])
        defer { RealPeers.stop(virtiofsd) }
        var frontEnd = try connect(to: socket, log: log)
        try frontEnd.initialize()
        let load = try frontEnd.startTransfer(.load)
        let payload = Self.pathState.encoded()
        _ = try payload.withUnsafeBytes { try load.descriptor.writeAll($0) }
        try load.close()
        try #require(try frontEnd.checkDeviceState() == 0, "\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        let save = try frontEnd.startTransfer(.save)
        let sink = ByteArraySink()
        _ = try StateTransfer.receiveState(from: save, into: sink, timeout: .seconds(10))
        try #require(try frontEnd.checkDeviceState() == 0, "\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        let stream = path("file-handles.state")
        try Data(sink.bytes).write(to: URL(fileURLWithPath: stream))
        return stream
    }

    /// Connects to the virtiofsd at `socket`: its socket file appears at bind(2), a moment before
    /// it listens, so a refused connection is tried again for up to 5 s.
    private func connect(to socket: String, log: String) throws -> FrontEnd {
        for _ in 0..<500 {
            do {
                return try FrontEnd(socketPath: socket, timeout: .seconds(10))
            } catch {
                guard case .cannotConnect(_, .connectionRefused) = error else { throw error }
                Thread.sleep(forTimeInterval: 0.01)
            }
        }
        Issue.record("virtiofsd does not listen at \(socket): \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        throw VhostUserError.cannotConnect(path: socket, .connectionRefused)
    }

    /// Replays `stream` into a real virtiofsd serving `share` in abort mode, able to open file
    /// handles unless `capabilities` is off.
    private func replay(
        _ stream: String, onto share: String, on generation: PeerGeneration, name: String, capabilities: Bool = true, onError mode: String = "abort"
    ) throws -> StatetoolRunner.Result {
        let socket = path("\(name).sock"), log = path("\(name).log")
        let virtiofsd = try generation.startVirtiofsd(
            sharedDirectory: share, socket: socket, log: log,
            options: ["--migration-on-error=\(mode)"] + (capabilities ? ["--modcaps=+dac_read_search"] : []))
        defer { RealPeers.stop(virtiofsd) }
        return try StatetoolRunner.run(["replay", "--socket", socket, "--backend-log", log, stream])
    }

    /// Checks `output`'s one JSON line against `schemas/NAME.schema.json`.
    private func expectValid(_ output: String, against name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let file = path("\(name)-\(UUID().uuidString.prefix(8)).jsonl")
        try Data(output.utf8).write(to: URL(fileURLWithPath: file))
        let validator = StatetoolRunner.packageDirectory.appendingPathComponent("Tests/Schemas/validate.py").path
        let checked = try ProcessRunner.run("/usr/bin/python3", [validator, name, file])
        #expect(checked.status == 0, "not valid against schemas/\(name).schema.json:\n\(checked.stdout)\(checked.stderr)", sourceLocation: sourceLocation)
    }

    @Test(arguments: PeerGeneration.all)
    func aCopyOfTheShareIsServedTheOriginalsUntilTheHandlesBecomePaths(generation: PeerGeneration) throws {
        try generation.require()
        let original = try makeOriginal()
        let state = try realFileHandleState(of: original, on: generation)
        let copy = try copy(of: original)

        // What the real virtiofsd saved: the root and five file-handle inodes on the share's mount ".".
        let decoded = try VirtiofsdState(decoding: LoadedPayloadBytes.of(state))
        #expect(decoded.inodes.map(\.id) == [1, 2, 3, 4, 5, 6])
        #expect(decoded.inodes.dropFirst().allSatisfy { $0.location.kind == .fileHandle })
        #expect(decoded.mountPaths.map(\.path) == ["."])
        #expect(decoded.handles.map(\.inode) == [3])

        // On the original every handle resolves, under it.
        let onOriginal = try StatetoolRunner.run(["preflight", "--json", state, "--shared-dir", original])
        #expect(onOriginal.status == 0, "\(onOriginal.stdout)\(onOriginal.stderr)")
        try expectValid(onOriginal.stdout, against: "preflight")
        let resolved = try #require(try onOriginal.jsonObject()["fileHandleInodes"] as? [[String: Any]])
        #expect(resolved.map { $0["status"] as? String } == Array(repeating: "resolving", count: 5))
        #expect(
            Dictionary(uniqueKeysWithValues: resolved.map { ($0["id"] as! Int, $0["path"] as! String) })
                == [2: "dir", 3: "dir/file.txt", 4: "dir/deeper", 5: "dir/deeper/leaf.txt", 6: "only-original.txt"])

        // On the copy every handle opens the original's file: the real load accepts it all the same.
        let onCopy = try StatetoolRunner.run(["preflight", "--json", state, "--shared-dir", copy])
        #expect(onCopy.status == 1, "\(onCopy.stdout)\(onCopy.stderr)")
        try expectValid(onCopy.stdout, against: "preflight")
        let report = try onCopy.jsonObject()
        #expect(report["failingInodes"] as? [Int] == [])
        #expect(report["clean"] as? Bool == false)
        let outside = try #require(report["fileHandleInodes"] as? [[String: Any]])
        #expect(outside.map { $0["status"] as? String } == Array(repeating: "resolving-outside-share", count: 5))
        #expect(
            Dictionary(uniqueKeysWithValues: outside.map { ($0["id"] as! Int, $0["path"] as! String) })
                == [2: original + "/dir", 3: original + "/dir/file.txt", 4: original + "/dir/deeper",
                    5: original + "/dir/deeper/leaf.txt", 6: original + "/only-original.txt"])
        let text = try StatetoolRunner.run(["preflight", state, "--shared-dir", copy])
        #expect(text.status == 1)
        #expect(text.stdout.contains("file handles: 5 inodes located by file handle: 0 resolving under \(copy), 5 resolving outside it, 0 stale\n"))
        #expect(text.stdout.contains("outside share: inode 6: its file handle opens \(original)/only-original.txt, outside \(copy): "))
        // A destination virtiofsd 1.13 started without --modcaps=+dac_read_search has no
        // CAP_DAC_READ_SEARCH and refuses every handle, as predicted; 1.14 holds inodes by
        // file handle by default (--inode-file-handles=prefer), keeps the capability and
        // loads the state, as predicted too.
        let predicted = try StatetoolRunner.run([
            "preflight", "--json", "--destination-args=--sandbox=none", "--destination-release", generation.virtiofsdVersion, state,
            "--shared-dir", original,
        ])
        let withoutCapability = try replay(state, onto: original, on: generation, name: "no-caps", capabilities: false)
        if generation.virtiofsdVersion == "1.13" {
            #expect(predicted.status == 1)
            let refusedFirst = try #require(try predicted.jsonObject()["firstFailure"] as? [String: Any])
            #expect(refusedFirst["id"] as? Int == 6)
            #expect(refusedFirst["reason"] as? String == "Opening file handle: Operation not permitted")
            #expect(withoutCapability.status == 3)
            #expect(
                withoutCapability.stderr.contains("Failed to load state: Inode 6: Opening file handle: Operation not permitted (os error 1)"),
                "\(withoutCapability.stderr)")
        } else {
            #expect(predicted.status == 0, "\(predicted.stdout)")
            #expect(withoutCapability.status == 0, "\(withoutCapability.stderr)")
        }
        let silently = try replay(state, onto: copy, on: generation, name: "as-saved")
        #expect(silently.status == 0, "\(silently.stdout)\(silently.stderr)")

        // retarget refuses it as it is, and converts it through the original.
        let refused = try StatetoolRunner.run(["retarget", state, "--shared-dir", copy, "--drop-missing", "-o", path("refused.state")])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("error: 5 inodes located by file handle resolve outside the shared directory, inode "))
        #expect(!FileManager.default.fileExists(atPath: path("refused.state")))

        // The copy lacks only-original.txt: converted, it fails there like any path, and --drop-missing drops it.
        let kept = try StatetoolRunner.run(["retarget", state, "--shared-dir", copy, "--handles-to-paths", original, "-o", path("kept.state")])
        #expect(kept.status == 1)
        #expect(kept.stderr.contains("error: 1 inodes would still be invalid on the destination, 0 open handles would fail (--drop-missing drops them)"))

        let converted = path("paths.state")
        let retarget = try StatetoolRunner.run([
            "retarget", state, "--shared-dir", copy, "--handles-to-paths", original, "--drop-missing", "--json", "-o", converted,
        ])
        #expect(retarget.status == 0, "\(retarget.stderr)")
        try expectValid(retarget.stdout, against: "retarget")
        let changes = try retarget.jsonObject()
        let convertedInodes = try #require(changes["convertedInodes"] as? [[String: Any]])
        #expect(convertedInodes.map { $0["id"] as? Int } == [2, 3, 4, 5, 6])
        #expect(convertedInodes.map { $0["path"] as? String } == ["dir", "dir/file.txt", "dir/deeper", "dir/deeper/leaf.txt", "only-original.txt"])
        #expect(convertedInodes.map { $0["parent"] as? Int } == [1, 2, 2, 4, 1])
        #expect(convertedInodes.map { $0["name"] as? String } == ["dir", "file.txt", "deeper", "leaf.txt", "only-original.txt"])
        #expect((changes["droppedInodes"] as? [[String: Any]])?.map { $0["id"] as? Int } == [6])
        // The path state a find-paths source would have written, less the dropped inode: refcounts
        // count one reference per child again (the load drops them), the mount paths are gone.
        let written = try VirtiofsdState(decoding: LoadedPayloadBytes.of(converted))
        var expected = Self.pathState
        expected.inodes.removeAll { $0.id == 6 }
        expected.inodes[0].refcount = 2
        #expect(written.inodes.map(\.id) == expected.inodes.map(\.id))
        #expect(written.inodes.map(\.location) == expected.inodes.map(\.location))
        #expect(written.inodes.map(\.refcount) == expected.inodes.map(\.refcount))
        #expect(written.handles.map(\.id) == [10])
        #expect(written.mountPaths.isEmpty)
        let onCopyNow = try StatetoolRunner.run(["preflight", converted, "--shared-dir", copy])
        #expect(onCopyNow.status == 0, "\(onCopyNow.stdout)")
        let loads = try replay(converted, onto: copy, on: generation, name: "converted")
        #expect(loads.status == 0, "\(loads.stdout)\(loads.stderr)")
    }

    /// The fixture's s3 capture on a share rebuilt from the manifest: its handles name inodes of
    /// the capture machine's file system, which the rebuilt files are not, so every one is stale;
    /// the real virtiofsd stops at the same inode preflight names first.
    @Test(arguments: PeerGeneration.all)
    func theFixtureFileHandlesAreStaleOnARebuiltShareForTheRealLoaderToo(generation: PeerGeneration) throws {
        try generation.require()
        let share = scratch.url("rebuilt")
        try RealPeers.makeShare(at: share)
        let state = Fixtures.state("s3-file-handles")
        let checked = try StatetoolRunner.run(["preflight", "--json", state, "--shared-dir", share.path])
        #expect(checked.status == 1)
        try expectValid(checked.stdout, against: "preflight")
        let first = try #require(try checked.jsonObject()["firstFailure"] as? [String: Any])
        #expect(first["id"] as? Int == 5398)
        let replayed = try replay(state, onto: share.path, on: generation, name: "s3")
        #expect(replayed.status == 3, "\(replayed.stdout)\(replayed.stderr)")
        #expect(replayed.stderr.contains("Failed to load state: Inode 5398: Opening file handle: Stale file handle (os error 116)"), "\(replayed.stderr)")
    }

    @Test(arguments: PeerGeneration.all)
    func aFileDeletedSinceMakesItsHandleStaleWhereTheRealLoaderStops(generation: PeerGeneration) throws {
        try generation.require()
        let original = try makeOriginal()
        let state = try realFileHandleState(of: original, on: generation)
        try FileManager.default.removeItem(atPath: original + "/dir/deeper/leaf.txt")

        let checked = try StatetoolRunner.run(["preflight", "--json", state, "--shared-dir", original])
        #expect(checked.status == 1)
        let report = try checked.jsonObject()
        // The root loads first, swapped out for the last inode, 6; each inode loaded is swapped
        // out for the last again: 6, 5, 4, 3, 2.
        #expect(report["failingInodes"] as? [Int] == [5])
        let first = try #require(report["firstFailure"] as? [String: Any])
        #expect(first["reason"] as? String == "Opening file handle: Stale file handle")
        let inodes = try #require(report["fileHandleInodes"] as? [[String: Any]])
        #expect(inodes.map { $0["id"] as? Int } == [6, 5, 4, 3, 2])
        #expect(inodes.map { $0["status"] as? String } == ["resolving", "stale", "resolving", "resolving", "resolving"])

        let replayed = try replay(state, onto: original, on: generation, name: "stale")
        #expect(replayed.status == 3, "\(replayed.stdout)\(replayed.stderr)")
        #expect(replayed.stderr.contains("Failed to load state: Inode 5: Opening file handle: Stale file handle (os error 116)"), "\(replayed.stderr)")
        // guest-error loads, with just that inode invalid.
        let tolerated = try replay(state, onto: original, on: generation, name: "stale-guest-error", onError: "guest-error")
        #expect(tolerated.status == 0, "\(tolerated.stdout)\(tolerated.stderr)")
        let log = try String(contentsOfFile: path("stale-guest-error.log"), encoding: .utf8)
        let invalid = log.split(separator: "\n").filter { $0.contains("Invalid inode") }
        #expect(invalid.count == 1, "\(log)")
        #expect(invalid.first?.hasSuffix("Invalid inode 5 indexed: Opening file handle: Stale file handle (os error 116)") == true, "\(log)")

        let refused = try StatetoolRunner.run(["retarget", state, "--shared-dir", original, "--handles-to-paths", original, "-o", path("x.state")])
        #expect(refused.status == 1)
        #expect(
            refused.stderr.contains(
                "error: --handles-to-paths: the file handle of inode 5 does not open on the file system of \(original): Opening file handle: Stale file handle (--drop-missing drops it)"
            ), "\(refused.stderr)")
        let dropped = try StatetoolRunner.run([
            "retarget", state, "--shared-dir", original, "--handles-to-paths", original, "--drop-missing", "-o", path("dropped.state"),
        ])
        #expect(dropped.status == 0, "\(dropped.stderr)")
        #expect(dropped.stdout.contains("converted 4 inodes located by file handle into path inodes"), "\(dropped.stdout)")
        let loads = try replay(path("dropped.state"), onto: original, on: generation, name: "dropped")
        #expect(loads.status == 0, "\(loads.stdout)\(loads.stderr)")
    }
}

/// The payload of a state stream file, for decoding in a test.
enum LoadedPayloadBytes {
    static func of(_ stream: String) throws -> [UInt8] {
        let payload = stream + ".payload"
        let result = try StatetoolRunner.run(["payload", stream, "-o", payload])
        try #require(result.status == 0, "\(result.stderr)")
        return Array(try Data(contentsOf: URL(fileURLWithPath: payload)))
    }
}
