import Foundation
import TestSupport
import Testing

/// `retarget` and `migration replace` proven on the real thing: the fixture
/// guest's migration file, changed by statetool, restored into real QEMU with a
/// real virtiofsd in its default (abort) mode, of each generation (QEMU 10.0 +
/// virtiofsd 1.13, QEMU 11.1 + virtiofsd 1.14), and the guest asked through its
/// serial console what it can read.
@Suite(.serialized) final class RecoveryTests {
    let scratch: ScratchDirectory

    init() throws {
        scratch = try ScratchDirectory("recovery")
    }

    private func path(_ name: String) -> String { scratch.path(name) }

    /// What the guest reads after the restore: its file, fd 70 (d06/s00), the
    /// tree's directories, fd 80 (d07/s00), and a directory next to d07.
    static let probes = ["cat /mnt/hello.txt", "cat <&70", "ls /mnt/tree | tr '\\n' ' '", "cat <&80", "ls /mnt/tree/d06/s01 | wc -l"]
    static let allDirectories = (0..<20).map { String(format: "d%02d", $0) }.joined(separator: " ") + " "
    static let fd70 = "fixture file 01500 3e2d32fd2f8e37131ab0e7dd"
    static let fd80 = "fixture file 01750 5ffde9f3051532c7e4601bd2"

    @Test(arguments: PeerGeneration.all)
    func theOriginalFileDoesNotLoadOntoTheShareWithoutD07(generation: PeerGeneration) throws {
        try generation.require()
        try RealPeers.makeShare(at: scratch.url("broken"), broken: true)
        let restore = try FixtureRestore(migrationFile: try Fixtures.migrationFile("s1-A-running"), share: path("broken"), in: scratch.url, on: generation)
        #expect(!restore.completed)
        #expect(restore.virtiofsdLog.contains("Inode 12: Opening \(path("broken"))/tree/d07: No such file or directory"))
    }

    @Test(arguments: PeerGeneration.all)
    func dropMissingRestoresOntoTheShareWithoutD07AndTheGuestRunsOn(generation: PeerGeneration) throws {
        try generation.require()
        try RealPeers.makeShare(at: scratch.url("broken"), broken: true)
        let retarget = try StatetoolRunner.run([
            "retarget", try Fixtures.migrationFile("s1-A-running"), "--shared-dir", path("broken"), "--drop-missing", "-o", path("retargeted.mig"),
        ])
        #expect(retarget.status == 0, "\(retarget.stderr)")
        #expect(retarget.stdout.contains("\ndropped tree/d07 and the 260 inodes under it, 10 open handles (inode 12: Opening tree/d07: No such file or directory)\n"))
        #expect(retarget.stdout.contains("\nrefcount of tree (inode 2): 23 -> 22\n"))
        #expect(retarget.stdout.contains("\nresult: 4961 inodes, 190 open handles; checked against \(path("broken")): every inode resolves\n"))
        #expect(retarget.stdout.contains("\nJSON description: devices[28].subsections[0].fields[0].size 238472 -> 226533\n"))

        let restore = try FixtureRestore(migrationFile: path("retargeted.mig"), share: path("broken"), in: scratch.url, on: generation, probes: Self.probes)
        #expect(restore.completed, "\(restore.virtiofsdLog)")
        #expect(restore.output == [
            "hello from the host", Self.fd70, Self.allDirectories.replacingOccurrences(of: "d07 ", with: ""),
            "cat: read error: Bad file descriptor", "25",
        ])
    }

    /// `tree/d07` moved within its parent, and out of it to the share's root (the
    /// parents' refcounts move with it).
    @Test(arguments: PeerGeneration.all, ["tree/moved-d07", "d07"])
    func renameFollowsAMovedDirectory(generation: PeerGeneration, to destination: String) throws {
        try generation.require()
        let share = scratch.url("moved")
        try RealPeers.makeShare(at: share)
        try FileManager.default.moveItem(at: share.appendingPathComponent("tree/d07"), to: share.appendingPathComponent(destination))
        let file = try Fixtures.migrationFile("s1-A-running")

        let without = try FixtureRestore(migrationFile: file, share: share.path, in: scratch.url, on: generation)
        #expect(!without.completed)

        let retarget = try StatetoolRunner.run(["retarget", file, "--shared-dir", share.path, "--rename", "tree/d07=\(destination)", "-o", path("renamed.mig")])
        #expect(retarget.status == 0, "\(retarget.stderr)")
        #expect(retarget.stdout.contains("\nrenamed tree/d07 -> \(destination) (inode 12)\n"))
        if destination == "d07" {
            #expect(retarget.stdout.contains("\nrefcount of tree (inode 2): 23 -> 22\n"))
            #expect(retarget.stdout.contains("\nrefcount of . (inode 1): 3 -> 4\n"))
        }
        let restore = try FixtureRestore(
            migrationFile: path("renamed.mig"), share: share.path, in: scratch.url, on: generation,
            probes: ["cat <&80", "cat <&89", "ls /mnt/\(destination)/s03 | wc -l", "cat <&70"])
        #expect(restore.completed, "\(restore.virtiofsdLog)")
        #expect(restore.output == [Self.fd80, "fixture file 01975 d09598083aaacf06874ecc52", "25", Self.fd70])
    }

    @Test(arguments: PeerGeneration.all)
    func stripFileHandlesRestoresAVerifyHandlesStateOntoACopy(generation: PeerGeneration) throws {
        try generation.require()
        try RealPeers.makeShare(at: scratch.url("copy"))
        let file = try Fixtures.migrationFile("s2-verify-handles")

        let asIs = try FixtureRestore(migrationFile: file, share: path("copy"), in: scratch.url, on: generation)
        #expect(!asIs.completed)
        #expect(asIs.virtiofsdLog.contains("Inode 1 is not the same inode as in the migration source: File handle differs"))

        let refused = try StatetoolRunner.run(["retarget", file, "--shared-dir", path("copy"), "-o", path("stripped.mig")])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("the load would fail whatever is dropped: Inode 1 is not the same inode as in the migration source: File handle differs (--strip-file-handles drops the recorded file handles)"))
        #expect(!FileManager.default.fileExists(atPath: path("stripped.mig")))

        let retarget = try StatetoolRunner.run(["retarget", file, "--shared-dir", path("copy"), "--strip-file-handles", "-o", path("stripped.mig")])
        #expect(retarget.status == 0, "\(retarget.stderr)")
        #expect(retarget.stdout.contains("\nstripped the recorded file handles of 5222 inodes: the destination finds them by path, their identity is no longer verified\n"))
        #expect(retarget.stdout.contains("at offset 63839496: 295918 -> 238472 bytes\n"))
        let restore = try FixtureRestore(
            migrationFile: path("stripped.mig"), share: path("copy"), in: scratch.url, on: generation, probes: ["cat <&80", "cat /mnt/hello.txt"])
        #expect(restore.completed, "\(restore.virtiofsdLog)")
        #expect(restore.output == [Self.fd80, "hello from the host"])
    }
    /// The fixture's rings are 1024 entries long. QEMU 11.1 checks them against the
    /// destination device's `queue-size` (default 128) and refuses the file; QEMU 10.0
    /// did not check. With `queue-size=1024` both load it (every restore above).
    @Test func qemu11RefusesTheFixtureFileWhenTheDestinationQueuesAreShorter() throws {
        try PeerGeneration.today.require()
        try RealPeers.makeShare(at: scratch.url("share"))
        let file = try Fixtures.migrationFile("s1-A-running")
        let restore = try FixtureRestore(migrationFile: file, share: path("share"), in: scratch.url, on: .today, queueSize: nil)
        #expect(!restore.completed)
        #expect(restore.qemuLog.contains("VQ 0 vring.num 1024 exceeds allocated max 128"), "\(restore.qemuLog)")
        #expect(restore.qemuLog.contains("load of migration failed: Invalid argument"), "\(restore.qemuLog)")

        // statetool says so before the restore, from the file's virtio field alone.
        let checked = try StatetoolRunner.run(["migration", "ls", file, "--queue-size", "128"])
        #expect(checked.status == 1)
        #expect(checked.stderr == """
            \(file): error: virtqueue-size at offset 63851662: virtqueue 0 has 1024 entries, more than the destination's queue-size 128: \
            QEMU 11.1 refuses it (VQ 0 vring.num 1024 exceeds allocated max 128)
            \(file): error: virtqueue-size at offset 63851678: virtqueue 1 has 1024 entries, more than the destination's queue-size 128: \
            QEMU 11.1 refuses it (VQ 1 vring.num 1024 exceeds allocated max 128)

            """)
        #expect(try StatetoolRunner.run(["migration", "ls", file, "--queue-size", "1024"]).status == 0)
    }
}

/// The fixture guest restored from a migration file: virtiofsd serving
/// `share` (default options: `--migration-on-error=abort`), QEMU with the
/// fixture's destination command line and no kernel, `-incoming file:`, both of
/// `generation`; if the load completes, `cont` and each probe sent to the
/// guest's serial console. The machine is QEMU 10.0's q35 (as the fixture's), and
/// the device's rings `queueSize` long (the fixture's are 1024; `nil` leaves
/// QEMU's default).
struct FixtureRestore {
    let completed: Bool
    /// Each probe's output, its lines joined.
    let output: [String]
    let virtiofsdLog: String
    let qemuLog: String
    /// Where QEMU's standard error and virtiofsd's log were written (they stay).
    let qemuLogPath: String
    let virtiofsdLogPath: String

    init(
        migrationFile: String, share: String, in directory: URL, on generation: PeerGeneration = .current,
        queueSize: Int? = 1024, probes: [String] = [], virtiofsdOptions: [String] = []
    ) throws {
        let run = UUID().uuidString.prefix(8)
        func path(_ name: String) -> String { directory.appendingPathComponent("\(run)-\(name)").path }
        qemuLogPath = path("qemu.log")
        virtiofsdLogPath = path("vfsd.log")
        let virtiofsd = try generation.startVirtiofsd(
            sharedDirectory: share, socket: path("vfsd.sock"), log: path("vfsd.log"), options: virtiofsdOptions)
        defer { RealPeers.stop(virtiofsd) }
        let device = "vhost-user-fs-pci,chardev=char0,tag=myfs" + (queueSize.map { ",queue-size=\($0)" } ?? "")
        let qemu = try Peer.start(generation.qemu, PeerGeneration.machineArguments(megabytes: 256) + [
            "-chardev", "socket,id=ser0,path=\(path("serial.sock")),server=on,wait=off", "-serial", "chardev:ser0",
            "-chardev", "socket,id=char0,path=\(path("vfsd.sock"))",
            "-device", device,
            "-qmp", "unix:\(path("qmp.sock")),server=on,wait=off",
            "-S", "-incoming", "file:\(migrationFile)",
        ], log: path("qemu.log"))
        defer { RealPeers.stop(qemu) }
        completed = try Peer.python(["Tests/Peers/qmp.py", path("qmp.sock"), "wait-incoming"]).status == 0
        var output: [String] = []
        if completed && !probes.isEmpty {
            _ = try Peer.python(["Tests/Peers/qmp.py", path("qmp.sock"), "cont"])
            let serial = try Peer.python(["Tests/Peers/serial.py", path("serial.sock")] + probes)
            var current: [String]?
            for line in serial.stdout.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix("@@ ") {
                    if let current { output.append(current.joined(separator: "\n")) }
                    current = []
                } else if !line.isEmpty {
                    current?.append(String(line))
                }
            }
            if let current { output.append(current.joined(separator: "\n")) }
        }
        self.output = output
        RealPeers.stop(virtiofsd)
        RealPeers.stop(qemu)
        virtiofsdLog = (try? String(contentsOfFile: path("vfsd.log"), encoding: .utf8)) ?? ""
        qemuLog = (try? String(contentsOfFile: path("qemu.log"), encoding: .utf8)) ?? ""
    }
}
