import Foundation
import TestSupport
import Testing

/// `migration replace` and `retarget` as a user runs them, without a guest:
/// exact reports, outputs, refusals and exit statuses.
@Suite final class RecoveryCommandTests {
    let scratch: ScratchDirectory

    init() throws {
        scratch = try ScratchDirectory("recovery-command")
    }

    private func path(_ name: String) -> String { scratch.path(name) }

    private func data(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    // MARK: - migration replace

    /// Replacing a state by itself gives back the file byte for byte, for every capture.
    @Test(arguments: Fixtures.captures)
    func replacingAStateByItselfIsTheIdentity(capture: Fixtures.Capture) throws {
        let file = try Fixtures.migrationFile(capture.name)
        let result = try StatetoolRunner.run(["migration", "replace", file, "--state", Fixtures.state(capture.name), "-o", path("same.mig")])
        #expect(result.status == 0, "\(result.stderr)")
        let length = capture.streamEnd - capture.streamOffset
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 4)
        #expect(lines.first == "replaced the back-end state of 0000:00:01.0/vhost-user-fs (section 38, vhost-user-fs-backend) at offset \(capture.streamOffset): \(length) -> \(length) bytes")
        #expect(lines.dropFirst().first == "JSON description: unchanged (the same size)")
        // Everything but the old state and the JSON description, which the process rewrites.
        let copied = try #require(lines.dropFirst(2).first.flatMap { UInt64($0.dropFirst("copied ".count).prefix { $0.isNumber }) })
        #expect(copied > capture.streamOffset && copied < capture.fileSize - length)
        #expect(lines.dropFirst(2).first == "copied \(copied) bytes of \(file) inside the kernel (copy_file_range)")
        #expect(lines.last == "checked: the written file reads back cleanly, every described size matches, the new state is in place")
        let identical = try data(path("same.mig")) == data(file)
        #expect(identical)
    }

    @Test func aZstdFileFromAPipeIsCopiedThroughTheProcess() throws {
        let original = try Fixtures.migrationFile("s1-A-running")
        let compressed = try data(Fixtures.compressedMigrationFile)
        let result = try StatetoolRunner.run(
            ["migration", "replace", "-", "--state", Fixtures.state("s2-verify-handles"), "--zstd", "-o", path("s2.mig.zst"), "--json"],
            stdin: compressed)
        #expect(result.status == 0, "\(result.stderr)")
        let report = try result.jsonObject()
        #expect(report["copiedInKernel"] as? Int == 0)
        #expect(report["oldLength"] as? Int == 238472)
        #expect(report["newLength"] as? Int == 295918)
        #expect(report["checked"] as? Bool == true)
        let changes = try #require(report["descriptionChanges"] as? [[String: Any]])
        #expect(changes.count == 1)
        #expect(changes.first?["path"] as? String == "devices[28].subsections[0].fields[0].size")
        #expect(changes.first?["new"] as? Int == 295918)
        // Back again: the s2 state replaced by s1-A's gives the s1-A file exactly.
        let back = try StatetoolRunner.run(["migration", "replace", path("s2.mig.zst"), "--state", Fixtures.state("s1-A-running"), "-o", path("back.mig")])
        #expect(back.status == 0, "\(back.stderr)")
        #expect(back.stdout.hasPrefix("replaced the back-end state of 0000:00:01.0/vhost-user-fs (section 38, vhost-user-fs-backend) at offset 63896925: 295918 -> 238472 bytes\n"))
        let identical = try data(path("back.mig")) == data(original)
        #expect(identical)

        // To standard output, the report goes to standard error.
        let sample = StatetoolRunner.sample("two-devices.mig")
        let piped = try StatetoolRunner.run(["migration", "replace", sample, "--device", "2", "--state", StatetoolRunner.sample("good.state"), "-o", "-"])
        #expect(piped.status == 0, "\(piped.stderr)")
        #expect(piped.stdoutBytes == (try data(sample)))
        #expect(piped.stderr == """
            replaced the back-end state of 0000:00:04.0/vhost-user-fs (section 2, vhost-user-fs-backend) at offset 4411: 9396 -> 9396 bytes
            JSON description: unchanged (the same size)
            copied 4580 bytes of \(sample) inside the kernel (copy_file_range)

            """)
    }

    @Test func aPayloadIsFramedAsQEMUFramedIt() throws {
        let file = try Fixtures.migrationFile("s1-A-running")
        let payload = path("s1-A.payload")
        #expect(try StatetoolRunner.run(["payload", Fixtures.state("s1-A-running"), "-o", payload]).status == 0)
        let result = try StatetoolRunner.run(["migration", "replace", file, "--state", payload, "--bare-state", "--chunk-size", "64K", "-o", path("same.mig")])
        #expect(result.status == 0, "\(result.stderr)")
        let identical = try data(path("same.mig")) == data(file)
        #expect(identical)
    }

    /// virtio-net's state sits inside the `virtio` field: that field's size changes.
    @Test func aNetStateChangesTheVirtioFieldOfItsDevice() throws {
        let payload = path("net.payload")
        try Data("a new net state, longer than the old one\n".utf8).write(to: URL(fileURLWithPath: payload))
        let sample = StatetoolRunner.sample("two-devices.mig")
        let result = try StatetoolRunner.run(["migration", "replace", sample, "--device", "3", "--state", payload, "--bare-state", "-o", path("net.mig")])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasPrefix("""
            replaced the back-end state of 0000:00:03.0/virtio-net (section 3, virtio-net-device/backend) at offset 13920: 38 -> 49 bytes
            JSON description: devices[2].fields[0].size 121 -> 132

            """))
        let listed = try StatetoolRunner.run(["migration", "ls", path("net.mig")])
        #expect(listed.status == 0, "\(listed.stderr)")
        #expect(listed.stdout.contains("stream at offset 13920..13969, 49 bytes, 1 chunk, 41 payload bytes, valid\n"))
        let original = try data(sample), written = try data(path("net.mig"))
        #expect(written.prefix(13920) == original.prefix(13920))
        let json = String(decoding: written.suffix(200), as: UTF8.self)
        #expect(json.hasSuffix("{\"name\": \"virtio\", \"type\": \"virtio\", \"size\": 132}]}]}"))
    }

    @Test func refusalsLeaveNoOutput() throws {
        let sample = StatetoolRunner.sample("two-devices.mig")
        let several = try StatetoolRunner.run(["migration", "replace", sample, "--state", StatetoolRunner.sample("good.state"), "-o", path("out.mig")])
        #expect(several.status == 1)
        #expect(several.stderr == "\(sample): error: several devices hold back-end state (0000:00:04.0/vhost-user-fs, 0000:00:03.0/virtio-net): pick one with --device\n")

        let unknown = try StatetoolRunner.run(["migration", "replace", sample, "--device", "9", "--state", StatetoolRunner.sample("good.state"), "-o", path("out.mig")])
        #expect(unknown.status == 1)
        #expect(unknown.stderr == "\(sample): error: no back-end state of device 9 in this migration file\n")

        let broken = try StatetoolRunner.run(["migration", "replace", sample, "--device", "2", "--state", StatetoolRunner.sample("truncated-chunk.state"), "-o", path("out.mig")])
        #expect(broken.status == 1)
        #expect(broken.stderr.hasPrefix("\(sample): error: broken new state: truncated-chunk at offset "))

        let cut = path("cut.mig")
        try data(sample).prefix(5000).write(to: URL(fileURLWithPath: cut))
        let truncated = try StatetoolRunner.run(["migration", "replace", cut, "--device", "2", "--state", StatetoolRunner.sample("good.state"), "-o", path("out.mig")])
        #expect(truncated.status == 1)
        #expect(truncated.stderr == "\(cut): error: broken migration file: state-stream at offset 4411: 0000:00:04.0/vhost-user-fs: truncated-chunk at stream offset 0: input ends inside chunk 0: 4096 bytes declared, 585 present, 3511 missing\n")

        let notAFile = try StatetoolRunner.run(["migration", "replace", StatetoolRunner.sample("good.state"), "--state", StatetoolRunner.sample("good.state"), "-o", path("out.mig")])
        #expect(notAFile.status == 1)
        #expect(notAFile.stderr.hasPrefix("\(StatetoolRunner.sample("good.state")): error: broken migration file: not-a-migration-file at offset 0"))

        let usage = try StatetoolRunner.run(["migration", "replace", "-", "--state", "-"])
        #expect(usage.status == 64)
        #expect(!FileManager.default.fileExists(atPath: path("out.mig")))
    }

    // MARK: - retarget

    @Test func retargetKeepsTheKindOfItsInput() throws {
        let share = scratch.url("broken")
        try RealPeers.makeShare(at: share, broken: true)
        let stream = try StatetoolRunner.run(["retarget", Fixtures.state("s1-A-running"), "--shared-dir", share.path, "--drop-missing", "-o", path("new.state")])
        #expect(stream.status == 0, "\(stream.stderr)")
        #expect(stream.stdout == """
            \(Fixtures.state("s1-A-running")): virtiofsd state V2 (state stream), 5222 inodes, 200 open handles
            dropped tree/d07 and the 260 inodes under it, 10 open handles (inode 12: Opening tree/d07: No such file or directory)
            refcount of tree (inode 2): 23 -> 22
            result: 4961 inodes, 190 open handles; checked against \(share.path): every inode resolves
            wrote \(path("new.state")): state stream, 4 chunks of at most 65536 payload bytes, 226533 bytes

            """)
        let validated = try StatetoolRunner.run(["validate", path("new.state")])
        #expect(validated.status == 0)
        let preflight = try StatetoolRunner.run(["preflight", path("new.state"), "--shared-dir", share.path])
        #expect(preflight.status == 0, "\(preflight.stdout)")

        // A payload from standard input gives a payload on standard output; the report goes to standard error.
        let payload = try StatetoolRunner.run(["payload", Fixtures.state("s1-A-running"), "-o", path("s1-A.payload")])
        #expect(payload.status == 0)
        let bare = try StatetoolRunner.run(["retarget", "-", "--shared-dir", share.path, "--drop-missing", "-o", "-"], stdin: try data(path("s1-A.payload")))
        #expect(bare.status == 0, "\(bare.stderr)")
        #expect(bare.stderr.hasPrefix("-: virtiofsd state V2 (payload), 5222 inodes, 200 open handles\n"))
        #expect(bare.stderr.hasSuffix("wrote -: payload, 226513 bytes\n"))
        let unframed = try StatetoolRunner.run(["payload", path("new.state"), "-o", "-"])
        #expect(bare.stdoutBytes == unframed.stdoutBytes)
    }

    @Test func retargetReportsEveryChangeWithVerboseAndJSON() throws {
        let share = scratch.url("broken")
        try RealPeers.makeShare(at: share, broken: true)
        let verbose = try StatetoolRunner.run(["retarget", Fixtures.state("s1-A-running"), "--shared-dir", share.path, "--drop-missing", "-v", "-o", path("v.state")])
        #expect(verbose.status == 0)
        let lines = verbose.stdout.split(separator: "\n")
        #expect(lines.filter { $0.hasPrefix("  dropped inode ") }.count == 261)
        #expect(lines.contains("  dropped inode 12 tree/d07: Opening tree/d07: No such file or directory"))
        #expect(lines.contains("  dropped inode 1905 tree/d07/s00: parent inode 12 is invalid"))
        #expect(lines.contains("  dropped handle 954 on inode 1936 tree/d07/s00/file-01750-5ffde9f3051532c7e4601bd2.dat, O_RDONLY|O_LARGEFILE"))

        let result = try StatetoolRunner.run(["retarget", Fixtures.state("s1-A-running"), "--shared-dir", share.path, "--drop-missing", "--json", "-o", path("j.state")])
        #expect(result.status == 0)
        let report = try result.jsonObject()
        #expect(report["origin"] as? String == "state stream")
        #expect(report["version"] as? Int == 2)
        #expect(report["inodeCount"] as? [String: Int] == ["before": 5222, "after": 4961])
        #expect(report["handleCount"] as? [String: Int] == ["before": 200, "after": 190])
        #expect((report["droppedInodes"] as? [Any])?.count == 261)
        #expect((report["droppedHandles"] as? [[String: Any]])?.map { $0["id"] as? Int } == (954...963).map { $0 })
        let trees = try #require(report["droppedTrees"] as? [[String: Any]])
        #expect(trees.count == 1)
        #expect(trees.first?["path"] as? String == "tree/d07")
        #expect(trees.first?["descendants"] as? Int == 260)
        #expect(trees.first?["handleCount"] as? Int == 10)
        #expect((report["refcountChanges"] as? [[String: Any]])?.first?["new"] as? Int == 22)
        #expect(report["identityVerified"] as? Bool == false)
        #expect(report["changed"] as? Bool == true)
        #expect(report["migration"] is NSNull)
    }

    @Test func retargetRefusals() throws {
        let share = scratch.url("broken")
        try RealPeers.makeShare(at: share, broken: true)
        let state = Fixtures.state("s1-A-running")

        let failing = try StatetoolRunner.run(["retarget", state, "--shared-dir", share.path, "-o", path("out.state")])
        #expect(failing.status == 1)
        #expect(failing.stderr.contains("first failure (where --migration-on-error=abort stops): inode 12: Opening tree/d07: No such file or directory\n"))
        #expect(failing.stderr.hasSuffix("\(state): error: 261 inodes would still be invalid on the destination, 10 open handles would fail (--drop-missing drops them)\n"))

        let syntax = try StatetoolRunner.run(["retarget", state, "--shared-dir", share.path, "--rename", "tree/d07", "-o", path("out.state")])
        #expect(syntax.status == 64)
        let climbing = try StatetoolRunner.run(["retarget", state, "--shared-dir", share.path, "--rename", "tree/d07=../d07", "-o", path("out.state")])
        #expect(climbing.status == 64)

        let noDirectory = try StatetoolRunner.run(["retarget", state, "--shared-dir", path("absent"), "-o", path("out.state")])
        #expect(noDirectory.status == 2)
        #expect(noDirectory.stderr == "\(state): error: cannot open the shared directory \(path("absent")): No such file or directory\n")

        let notAState = try StatetoolRunner.run(["retarget", StatetoolRunner.sample("good.state"), "--shared-dir", share.path, "-o", path("out.state")])
        #expect(notAState.status == 2)
        #expect(notAState.stderr.hasPrefix("\(StatetoolRunner.sample("good.state")): error: not a virtiofsd state: "))
        #expect(!FileManager.default.fileExists(atPath: path("out.state")))
    }

    static let renameRefusals: [(rename: String, message: String)] = [
        ("tree/nothing=tree/else", "--rename: the state holds no inode at tree/nothing"),
        ("tree/d07=tree/d08", "--rename: the state already holds an inode at tree/d08"),
        ("tree/d07=elsewhere/d07", "--rename: the state holds no directory elsewhere to put elsewhere/d07 in (NEW's parent must be a directory the state holds, or the root)"),
        ("tree=tree/d00/tree", "--rename: tree cannot move under itself to tree/d00/tree"),
    ]

    @Test(arguments: renameRefusals)
    func aRenameThatDoesNotApplyIsRefused(rename: String, message: String) throws {
        let share = scratch.url("share")
        try FileManager.default.createDirectory(at: share, withIntermediateDirectories: true)
        let state = Fixtures.state("s1-A-running")
        let result = try StatetoolRunner.run(["retarget", state, "--shared-dir", share.path, "--rename", rename, "-o", path("out.state")])
        #expect(result.status == 1)
        #expect(result.stderr == "\(state): error: \(message)\n")
        #expect(!FileManager.default.fileExists(atPath: path("out.state")))
    }

    /// A zstd migration file from a pipe is read once and gives the same file as from its path.
    @Test func aMigrationFileFromAPipe() throws {
        let share = scratch.url("broken")
        try RealPeers.makeShare(at: share, broken: true)
        let piped = try StatetoolRunner.run(
            ["retarget", "-", "--shared-dir", share.path, "--drop-missing", "-o", path("piped.mig")], stdin: try data(Fixtures.compressedMigrationFile))
        #expect(piped.status == 0, "\(piped.stderr)")
        #expect(piped.stdout.hasPrefix("-: virtiofsd state V2 (migration file, device 0000:00:01.0/vhost-user-fs), 5222 inodes, 200 open handles\n"))
        let direct = try StatetoolRunner.run(["retarget", try Fixtures.migrationFile("s1-A-running"), "--shared-dir", share.path, "--drop-missing", "-o", path("direct.mig")])
        #expect(direct.status == 0, "\(direct.stderr)")
        let same = try data(path("piped.mig")) == data(path("direct.mig"))
        #expect(same)
    }

    /// The fixture's file handles name inodes of the capture machine's file system: on a share
    /// rebuilt from the manifest every one is stale, so retarget refuses and writes nothing.
    @Test func staleFileHandleInodesAreRefused() throws {
        let share = scratch.url("share")
        try RealPeers.makeShare(at: share)
        let result = try StatetoolRunner.run(["retarget", Fixtures.state("s3-file-handles"), "--shared-dir", share.path, "--json", "-o", path("s3.state")])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("file handles: 5221 inodes located by file handle: 0 resolving under \(share.path), 0 resolving outside it, 5221 stale\n"))
        #expect(result.stderr.contains("first failure (where --migration-on-error=abort stops): inode 5398: Opening file handle: Stale file handle\n"))
        #expect(result.stderr.contains("error: 5221 inodes would still be invalid on the destination, 200 open handles would fail (--drop-missing drops them)"))
        #expect(!FileManager.default.fileExists(atPath: path("s3.state")))
    }

    /// A state that already loads is written unchanged, and says so.
    @Test func aStateThatLoadsIsLeftAsItIs() throws {
        let share = scratch.url("share")
        try RealPeers.makeShare(at: share)
        let result = try StatetoolRunner.run(["retarget", Fixtures.state("s1-A-running"), "--shared-dir", share.path, "--drop-missing", "-o", path("same.state")])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("\nnothing to change: the state already loads on \(share.path)\n"))
        #expect(try data(path("same.state")) == data(Fixtures.state("s1-A-running")))
    }
}
