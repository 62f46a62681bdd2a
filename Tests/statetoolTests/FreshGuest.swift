import Foundation
import TestSupport
import Testing

/// The test guest (Debian's kernel and the initramfs of Tests/Peers/libvirt/guest-init)
/// booted by QEMU itself, with no libvirt: it mounts its virtiofs share, looks up the whole
/// tree, holds keep/a.txt, keep/b.txt and doomed/c.txt open, says `GUEST: ready` and waits
/// for `go` in the share; then it reads each held file through its old descriptor.
///
/// One guest per scratch folder: `boot` on a generation's QEMU and virtiofsd, `save` to a
/// migration file, `restore` a file on another (or the same) generation, `readHeldFiles`.
final class FreshGuest {
    let scratch: ScratchDirectory
    private var running: [Process] = []
    private var console = ""

    /// keep/a.txt, keep/b.txt, doomed/c.txt and a small tree, in `share`.
    init(in scratch: ScratchDirectory) throws {
        self.scratch = scratch
        for file in ["vmlinuz", "initrd.gz"] {
            try #require(FileManager.default.fileExists(atPath: LibvirtLab.guest.appendingPathComponent(file).path),
                         "the test guest's \(file) is missing: run Scripts/install-peers")
        }
        let files: [(String, String)] = [
            ("keep/a.txt", "alpha\n"), ("keep/b.txt", "beta\n"), ("doomed/c.txt", "gamma\n"),
            ("tree/one/x.txt", "x\n"), ("tree/two/y.txt", "y\n"),
        ]
        for (name, content) in files {
            let url = scratch.url("share").appendingPathComponent(name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(content.utf8).write(to: url)
        }
    }

    deinit { stop() }

    var share: String { scratch.path("share") }

    /// What the guest prints when every held file reads back.
    static let allRead = ["GUEST: fd 3: alpha", "GUEST: fd 4: beta", "GUEST: fd 5: gamma"]

    /// Boots the guest on `generation` with virtiofsd given `virtiofsdOptions` (for
    /// instance `--migration-mode=file-handles`) and waits until it holds its files.
    func boot(on generation: PeerGeneration, virtiofsdOptions: [String] = []) throws {
        try start(generation, virtiofsdOptions: virtiofsdOptions, extra: [
            "-kernel", LibvirtLab.guest.appendingPathComponent("vmlinuz").path,
            "-initrd", LibvirtLab.guest.appendingPathComponent("initrd.gz").path,
            "-append", "console=ttyS0 quiet init_on_free=1",
        ])
        try waitForConsole("GUEST: ready")
    }

    /// Migrates the running guest to `file` (with migration `capabilities`, such as
    /// `mapped-ram`) and stops its QEMU and virtiofsd.
    func save(to file: String, capabilities: [String] = []) throws {
        let migrated = try Peer.python(["Tests/Peers/qmp.py", scratch.path("qmp.sock"), "migrate", file] + capabilities)
        _ = try Peer.python(["Tests/Peers/qmp.py", scratch.path("qmp.sock"), "quit"])
        stop()
        try #require(migrated.status == 0, "the save did not complete; virtiofsd: \(log("vfsd.log"))")
    }

    /// Restores `file` on `generation` (a fresh virtiofsd with `virtiofsdOptions`): whether
    /// QEMU completed the incoming migration; if it did, the guest runs on.
    func restore(_ file: String, on generation: PeerGeneration, virtiofsdOptions: [String] = []) throws -> Bool {
        try start(generation, virtiofsdOptions: virtiofsdOptions, extra: ["-S", "-incoming", "file:\(file)"])
        let completed = try Peer.python(["Tests/Peers/qmp.py", scratch.path("qmp.sock"), "wait-incoming"]).status == 0
        if completed {
            _ = try Peer.python(["Tests/Peers/qmp.py", scratch.path("qmp.sock"), "cont"])
        }
        return completed
    }

    /// Tells the restored guest to read its held files; returns its `GUEST: fd` lines.
    func readHeldFiles() throws -> [String] {
        try Data().write(to: URL(fileURLWithPath: share + "/go"))
        try waitForConsole("GUEST: done")
        return try consoleText().split(whereSeparator: \.isNewline).map(String.init).filter { $0.hasPrefix("GUEST: fd") }
    }

    /// A log of this guest's peers: `vfsd.log` or `qemu.log` of the last start.
    func log(_ name: String) -> String {
        (try? String(contentsOfFile: scratch.path(name), encoding: .utf8)) ?? ""
    }

    /// Ends QEMU and virtiofsd (QEMU first: virtiofsd exits when its front-end goes).
    func stop() {
        for process in running.reversed() {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        running = []
    }

    private func start(_ generation: PeerGeneration, virtiofsdOptions: [String], extra: [String]) throws {
        stop()
        for name in ["vfsd.sock", "qmp.sock", "console.log", "vfsd.log", "qemu.log"] {
            try? FileManager.default.removeItem(atPath: scratch.path(name))
        }
        running.append(try generation.startVirtiofsd(
            sharedDirectory: share, socket: scratch.path("vfsd.sock"), log: scratch.path("vfsd.log"), options: virtiofsdOptions))
        running.append(try Peer.start(generation.qemu, PeerGeneration.machineArguments(megabytes: 128) + [
            "-serial", "file:\(scratch.path("console.log"))",
            "-chardev", "socket,id=char0,path=\(scratch.path("vfsd.sock"))",
            "-device", "vhost-user-fs-pci,chardev=char0,tag=myfs",
            "-qmp", "unix:\(scratch.path("qmp.sock")),server=on,wait=off",
        ] + extra, log: scratch.path("qemu.log"), waitingFor: scratch.path("qmp.sock")))
    }

    private func consoleText() throws -> String { log("console.log") }

    /// Waits up to 60 s (TCG boots in about 3) for `line` on the console.
    private func waitForConsole(_ line: String) throws {
        for _ in 0..<600 {
            if try consoleText().contains(line) { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        Issue.record("the guest never said \(line); its console: \(try consoleText()); QEMU: \(log("qemu.log")); virtiofsd: \(log("vfsd.log"))")
        throw CancellationError()
    }
}
