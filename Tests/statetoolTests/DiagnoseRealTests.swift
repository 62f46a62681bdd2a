import Foundation
import TestSupport
import Testing

/// `diagnose` proven on the real thing: the fixture guest's migration file
/// restored into real QEMU 10.0.2 with a real virtiofsd 1.13 (and QEMU 11.1 with
/// virtiofsd 1.14 where said), the restore
/// failing, diagnose reading the real logs, and its fix making the restore
/// succeed with the guest running on.
@Suite(.serialized) final class DiagnoseRealTests {
    let scratch: ScratchDirectory

    init() throws {
        try PeerGeneration.current.require()
        scratch = try ScratchDirectory("diagnose-real")
    }

    private func path(_ name: String) -> String { scratch.path(name) }

    private func diagnose(_ arguments: [String]) throws -> [String: Any] {
        let result = try StatetoolRunner.run(["diagnose", "--json"] + arguments)
        return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stderr)")
    }

    private func kinds(_ json: [String: Any]) -> [String] {
        (json["causes"] as? [[String: Any]] ?? []).compactMap { $0["kind"] as? String }
    }

    @Test(arguments: PeerGeneration.all)
    func aLostDirectoryIsNamedFromTheRealLogsAndFixed(generation: PeerGeneration) throws {
        try generation.require()
        try RealPeers.makeShare(at: scratch.url("broken"), broken: true)
        let file = try Fixtures.migrationFile("s1-A-running")
        let failed = try FixtureRestore(migrationFile: file, share: path("broken"), in: scratch.url, on: generation)
        #expect(!failed.completed)
        let arguments = [file, "--log", failed.qemuLogPath, "--log", failed.virtiofsdLogPath, "--shared-dir", path("broken")]

        let json = try diagnose(arguments)
        #expect(json["verdict"] as? String == "fixable")
        #expect(kinds(json) == ["missing-paths"])
        #expect(json["device"] as? String == "0000:00:01.0/vhost-user-fs")
        let evidence = (json["causes"] as? [[String: Any]])?.first?["evidence"] as? [[String: Any]] ?? []
        let line = try #require(evidence.first { $0["source"] as? String == "virtiofsd" })
        #expect(line["path"] as? String == failed.virtiofsdLogPath)
        #expect((line["text"] as? String)?.hasSuffix("Inode 12: Opening \(path("broken"))/tree/d07: No such file or directory (os error 2)") == true)
        let qemuLines = try String(contentsOfFile: failed.qemuLogPath, encoding: .utf8).split(separator: "\n")
        #expect(qemuLines.contains { $0.contains("Back-end failed to process its internal state") })

        let fixed = try StatetoolRunner.run(["diagnose"] + arguments + ["--fix", "-o", path("fixed.mig")])
        #expect(fixed.status == 0, "\(fixed.stderr)")
        #expect(fixed.stdout.hasPrefix("verdict: fixable\ncause missing-paths (0000:00:01.0/vhost-user-fs): 261 inodes and 10 open handles"))
        let restore = try FixtureRestore(migrationFile: path("fixed.mig"), share: path("broken"), in: scratch.url, on: generation, probes: RecoveryTests.probes)
        #expect(restore.completed, "\(restore.virtiofsdLog)")
        #expect(restore.output == [
            "hello from the host", RecoveryTests.fd70, RecoveryTests.allDirectories.replacingOccurrences(of: "d07 ", with: ""),
            "cat: read error: Bad file descriptor", "25",
        ])
    }

    /// A file-handles state restored onto a copy of its share loads, and the guest silently
    /// reads the original's files through their handles; diagnose names it
    /// (file-handle-outside-share), and its fix (`retarget --handles-to-paths`) makes the
    /// restored guest read the copy's.
    @Test(arguments: PeerGeneration.all)
    func aFileHandlesStateOnACopyIsDiagnosedAndMadeToUseTheCopy(generation: PeerGeneration) throws {
        try generation.require()
        let guestScratch = try ScratchDirectory("diagnose-handles")
        let guest = try FreshGuest(in: guestScratch)
        // virtiofsd 1.13 opens file handles only with CAP_DAC_READ_SEARCH kept.
        let options = generation == .current ? ["--modcaps=+dac_read_search"] : []
        try guest.boot(on: generation, virtiofsdOptions: ["--migration-mode=file-handles"] + options)
        let file = guestScratch.path("vm.mig")
        try guest.save(to: file)
        // The share moves aside; a copy takes its place, its held files' contents changed
        // (their sizes kept: the guest's kernel still knows them).
        let original = guestScratch.path("original")
        try FileManager.default.moveItem(atPath: guest.share, toPath: original)
        try FileManager.default.copyItem(atPath: original, toPath: guest.share)
        for (name, content) in [("keep/a.txt", "ALPHA\n"), ("keep/b.txt", "BETA\n"), ("doomed/c.txt", "GAMMA\n")] {
            try Data(content.utf8).write(to: URL(fileURLWithPath: guest.share + "/" + name))
        }

        #expect(try guest.restore(file, on: generation, virtiofsdOptions: options), "\(guest.log("vfsd.log"))")
        #expect(try guest.readHeldFiles() == FreshGuest.allRead, "the original's files, silently")

        let arguments = [file, "--shared-dir", guest.share]
        let json = try diagnose(arguments)
        #expect(json["verdict"] as? String == "fixable")
        #expect(kinds(json) == ["file-handle-outside-share"])
        let fix = try #require(json["fix"] as? [String: Any])
        let command = try #require(fix["command"] as? [String])
        #expect(command.starts(with: ["statetool", "retarget"]), "\(command)")
        let handles = try #require(command.firstIndex(of: "--handles-to-paths"))
        #expect(command[handles + 1] == original)

        // Its bundle names none of the files the handles open outside the share, nor where they are.
        let bundle = guestScratch.path("report.tar.zst")
        let bundled = try StatetoolRunner.run(["diagnose"] + arguments + ["--bundle", bundle])
        #expect(bundled.status == 1, "\(bundled.stderr)")
        let unpacked = guestScratch.path("unpacked")
        try FileManager.default.createDirectory(atPath: unpacked, withIntermediateDirectories: true)
        #expect(try ProcessRunner.run("/usr/bin/tar", ["--zstd", "-xf", bundle, "-C", unpacked]).status == 0)
        let members = try #require(FileManager.default.enumerator(atPath: unpacked)?.allObjects as? [String])
        let names = try DiagnoseBundleTests.names(under: original).union([(original as NSString).lastPathComponent])
        for member in members where !["logs", "sections", "state"].contains(member) {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: unpacked + "/" + member))
            #expect(bytes.range(of: Data(original.utf8)) == nil, "\(member) holds the original's path")
            #expect(DiagnoseBundleTests.words(bytes).intersection(names).isEmpty, "\(member): \(DiagnoseBundleTests.words(bytes).intersection(names))")
        }

        let fixed = try StatetoolRunner.run(["diagnose"] + arguments + ["--fix", "-o", guestScratch.path("fixed.mig")])
        #expect(fixed.status == 0, "\(fixed.stdout)\(fixed.stderr)")
        let restored = try guest.restore(guestScratch.path("fixed.mig"), on: generation, virtiofsdOptions: options)
        #expect(restored, "QEMU: \(guest.log("qemu.log")); virtiofsd: \(guest.log("vfsd.log"))")
        if restored {
            let read = try guest.readHeldFiles()
            #expect(read == ["GUEST: fd 3: ALPHA", "GUEST: fd 4: BETA", "GUEST: fd 5: GAMMA"], "\(read)")
        }
    }

    @Test func aMovedDirectoryIsFoundAndFollowed() throws {
        let share = scratch.url("moved")
        try RealPeers.makeShare(at: share)
        try FileManager.default.moveItem(at: share.appendingPathComponent("tree/d07"), to: share.appendingPathComponent("tree/moved-d07"))
        let file = try Fixtures.migrationFile("s1-A-running")
        let failed = try FixtureRestore(migrationFile: file, share: share.path, in: scratch.url)
        #expect(!failed.completed)
        let arguments = [file, "--log", failed.qemuLogPath, "--log", failed.virtiofsdLogPath, "--shared-dir", share.path]
        let json = try diagnose(arguments + ["-o", path("renamed.mig")])
        #expect(json["verdict"] as? String == "fixable")
        #expect(kinds(json) == ["moved-paths"])
        #expect((json["fix"] as? [String: Any])?["command"] as? [String] == [
            "statetool", "retarget", file, "--shared-dir", share.path, "--rename", "tree/d07=tree/moved-d07", "-o", path("renamed.mig"),
        ])
        let fixed = try StatetoolRunner.run(["diagnose"] + arguments + ["--fix", "-o", path("renamed.mig")])
        #expect(fixed.status == 0, "\(fixed.stderr)")
        let restore = try FixtureRestore(
            migrationFile: path("renamed.mig"), share: share.path, in: scratch.url, probes: ["cat <&80", "ls /mnt/tree/moved-d07/s03 | wc -l", "cat <&70"])
        #expect(restore.completed, "\(restore.virtiofsdLog)")
        #expect(restore.output == [RecoveryTests.fd80, "25", RecoveryTests.fd70])
    }

    @Test func aVerifyHandlesStateOnACopyIsFixedByStrippingTheHandles() throws {
        try RealPeers.makeShare(at: scratch.url("copy"))
        let file = try Fixtures.migrationFile("s2-verify-handles")
        let failed = try FixtureRestore(migrationFile: file, share: path("copy"), in: scratch.url)
        #expect(!failed.completed)
        let arguments = [file, "--log", failed.qemuLogPath, "--log", failed.virtiofsdLogPath, "--shared-dir", path("copy")]
        let json = try diagnose(arguments)
        #expect(json["verdict"] as? String == "fixable")
        #expect(kinds(json) == ["file-handle-differs"])
        let fixed = try StatetoolRunner.run(["diagnose"] + arguments + ["--fix", "-o", path("stripped.mig")])
        #expect(fixed.status == 0, "\(fixed.stderr)")
        let restore = try FixtureRestore(migrationFile: path("stripped.mig"), share: path("copy"), in: scratch.url, probes: ["cat <&80", "cat /mnt/hello.txt"])
        #expect(restore.completed, "\(restore.virtiofsdLog)")
        #expect(restore.output == [RecoveryTests.fd80, "hello from the host"])
    }

    @Test func aDescriptorLimitTooLowIsADestinationFixThatWorks() throws {
        try RealPeers.makeShare(at: scratch.url("share"))
        let file = try Fixtures.migrationFile("s1-A-running")
        let failed = try FixtureRestore(migrationFile: file, share: path("share"), in: scratch.url, virtiofsdOptions: ["--rlimit-nofile=2000"])
        #expect(!failed.completed)
        let json = try diagnose([
            file, "--log", failed.qemuLogPath, "--log", failed.virtiofsdLogPath, "--shared-dir", path("share"), "--destination-args=--rlimit-nofile=2000",
        ])
        #expect(json["verdict"] as? String == "destination")
        #expect(kinds(json) == ["descriptor-limit"])
        let arguments = try #require((json["fix"] as? [String: Any])?["destinationArgs"] as? [String])
        #expect(arguments == ["--rlimit-nofile=7000"])
        let restore = try FixtureRestore(migrationFile: file, share: path("share"), in: scratch.url, probes: ["cat <&80"], virtiofsdOptions: arguments)
        #expect(restore.completed, "\(restore.virtiofsdLog)")
        #expect(restore.output == [RecoveryTests.fd80])
    }

    @Test func aDisabledOptionIsADestinationFixThatWorks() throws {
        try RealPeers.makeShare(at: scratch.url("share"))
        let file = try Fixtures.migrationFile("s1-A-running")
        let failed = try FixtureRestore(migrationFile: file, share: path("share"), in: scratch.url, virtiofsdOptions: ["--no-announce-submounts"])
        #expect(!failed.completed)
        // From the logs alone: virtiofsd names the option.
        let fromLogs = try diagnose(["--log", failed.qemuLogPath, "--log", failed.virtiofsdLogPath])
        #expect(fromLogs["verdict"] as? String == "destination")
        #expect(kinds(fromLogs) == ["option-mismatch"])
        let arguments = try #require((fromLogs["fix"] as? [String: Any])?["destinationArgs"] as? [String])
        #expect(arguments == ["--announce-submounts"])
        // From the file and the destination's arguments: the same.
        let fromFile = try diagnose([file, "--shared-dir", path("share"), "--destination-args=--no-announce-submounts"])
        #expect(kinds(fromFile) == ["option-mismatch"])
        let restore = try FixtureRestore(migrationFile: file, share: path("share"), in: scratch.url, probes: ["cat /mnt/hello.txt"], virtiofsdOptions: arguments)
        #expect(restore.completed, "\(restore.virtiofsdLog)")
        #expect(restore.output == ["hello from the host"])
    }
    /// QEMU 11.1 refuses the fixture file on a device with the default queue-size: diagnose
    /// names virtqueue-size from QEMU's line, with the two rings' offsets in the file, and the
    /// destination's queue-size the fix asks for makes the restore work.
    @Test func queuesLongerThanTheDestinationsAreADestinationFixThatWorks() throws {
        try PeerGeneration.today.require()
        try RealPeers.makeShare(at: scratch.url("share"))
        let file = try Fixtures.migrationFile("s1-A-running")
        let failed = try FixtureRestore(migrationFile: file, share: path("share"), in: scratch.url, on: .today, queueSize: nil)
        #expect(!failed.completed)
        let json = try diagnose([file, "--log", failed.qemuLogPath, "--log", failed.virtiofsdLogPath, "--shared-dir", path("share")])
        #expect(json["verdict"] as? String == "destination", "\(json)")
        #expect(kinds(json) == ["virtqueue-size"])
        let evidence = (json["causes"] as? [[String: Any]])?.first?["evidence"] as? [[String: Any]] ?? []
        #expect(evidence.contains { ($0["text"] as? String)?.contains("VQ 0 vring.num 1024 exceeds allocated max 128") == true && $0["line"] is Int })
        #expect(evidence.compactMap { $0["source"] as? String == "file" ? $0["offset"] as? Int : nil } == [63851662, 63851678], "\(evidence)")
        let fix = try #require(json["fix"] as? [String: Any])
        #expect(fix["kind"] as? String == "destination")
        #expect((fix["explanation"] as? String)?.contains("queue-size=1024") == true, "\(fix)")
        let restore = try FixtureRestore(migrationFile: file, share: path("share"), in: scratch.url, on: .today, queueSize: 1024, probes: ["cat /mnt/hello.txt"])
        #expect(restore.completed)
        #expect(restore.output == ["hello from the host"])
    }
}

/// `diagnose --libvirt` on the private libvirtd the libvirt tests run: a save
/// image at the managed-save path, libvirt's own domain log, virtiofsd's log
/// where libvirt puts it, a restore that failed for a lost directory.
///
/// This lab's domain runs its vhost-user-fs device by qemu:commandline with a
/// virtiofsd the test starts (libvirt 9.0 refuses to save a domain with a
/// virtiofs `<filesystem>`), so the XML names no share here: it is given with
/// --shared-dir (DiagnoseManagedSaveTests reads it from the XML, on libvirt 11.3). `virsh managedsave` refuses
/// the lab's transient domain, so `virsh save` writes the image to the
/// managed-save path.
@Suite(.serialized) struct DiagnoseLibvirtTests {
    @Test func aSaveImageWhoseShareLostADirectoryIsDiagnosedAndFixed() throws {
        let lab = try LibvirtLab()
        defer { lab.close() }
        try lab.boot()
        // A root laid out as libvirt's: the daemon's own log folder, the image at the managed-save path.
        let root = lab.path("root")
        try FileManager.default.createDirectory(atPath: root + "/var/lib/libvirt/qemu/save", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/var/log/libvirt", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: root + "/var/log/libvirt/qemu", withDestinationPath: lab.daemonPath("log/qemu"))
        let image = root + "/var/lib/libvirt/qemu/save/\(LibvirtLab.domain).save"
        try lab.save(to: image)
        try lab.removeDoomedDirectory()
        let refused = try lab.restore(image, log: "root/var/log/libvirt/qemu/\(LibvirtLab.domain)-fs0-virtiofsd.log")
        #expect(refused.status != 0, "the image restored onto a share without doomed/")

        let arguments = ["diagnose", "--libvirt", LibvirtLab.domain, "--libvirt-root", root, "--shared-dir", lab.share]
        let result = try StatetoolRunner.run(arguments + ["--json"])
        #expect(result.status == 1, "\(result.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(json["verdict"] as? String == "fixable")
        #expect(json["file"] as? String == image)
        #expect(json["device"] as? String == "0000:00:09.0/vhost-user-fs")
        let cause = try #require((json["causes"] as? [[String: Any]])?.first)
        #expect(cause["kind"] as? String == "missing-paths")
        let evidence = cause["evidence"] as? [[String: Any]] ?? []
        // virtiofsd's line in its libvirt-named log; QEMU's in libvirt's domain log, from the last start on.
        #expect(evidence.contains { $0["source"] as? String == "virtiofsd" && ($0["text"] as? String)?.contains("Opening \(lab.share)/doomed") == true })
        #expect(evidence.contains { $0["source"] as? String == "qemu" && ($0["path"] as? String)?.hasSuffix("/qemu/\(LibvirtLab.domain).log") == true })
        let checked = json["checked"] as? [String] ?? []
        #expect(checked.contains { $0.hasSuffix("/\(LibvirtLab.domain).log from line \(Self.lastStart(lab)) (libvirt, qemu)") }, "\(checked)")

        let fixed = lab.path("fixed.save")
        let applied = try StatetoolRunner.run(arguments + ["--fix", "-o", fixed])
        #expect(applied.status == 0, "\(applied.stderr)")
        let restored = try lab.restore(fixed, log: "restore.log")
        #expect(restored.status == 0, "virsh restore of the fixed image failed: \(restored.stderr)")
        let read = try lab.readHeldFiles()
        let console = try lab.console()
        #expect(read == LibvirtLab.heldFilesWithoutDoomed, "\(console)")
    }

    /// The line of the domain log's last `starting up`, from 1.
    static func lastStart(_ lab: LibvirtLab) -> Int {
        let text = (try? String(contentsOfFile: lab.daemonPath("log/qemu/\(LibvirtLab.domain).log"), encoding: .utf8)) ?? ""
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        return (lines.lastIndex { $0.contains("starting up libvirt version") } ?? -1) + 1
    }
}

/// `diagnose --libvirt` on a domain whose share libvirt serves itself (a
/// virtiofs `<filesystem>`, virtiofsd started by libvirt and logging to
/// `NAME-fs0-virtiofsd.log`): `virsh managedsave`, the share loses a directory,
/// `virsh start` fails; diagnose finds the image, the logs and the share from
/// the image's XML, and the fixed image put back in place starts. libvirt 11.3
/// (unpacked by Scripts/install-peers): libvirt 9.0 refuses the managed save
/// (`migration with virtiofs device is not supported`).
@Suite(.serialized) struct DiagnoseManagedSaveTests {
    @Test func aManagedSaveWhoseShareLostADirectoryIsDiagnosedFromItsXMLAndFixed() throws {
        let lab = try LibvirtLab(libvirt11: true, libvirtRunsVirtiofsd: true)
        defer { lab.close() }
        try lab.boot()
        let saved = try lab.virsh(["managedsave", LibvirtLab.domain])
        try #require(saved.status == 0, "virsh managedsave failed: \(saved.stderr)")
        try lab.removeDoomedDirectory()
        let refused = try lab.start()
        #expect(refused.status != 0, "the managed save started on a share without doomed/")

        // libvirt's places under a root: the daemon's lib and log folders.
        let root = lab.path("root")
        try FileManager.default.createDirectory(atPath: root + "/var/lib", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/var/log", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: root + "/var/lib/libvirt", withDestinationPath: lab.daemonPath("lib"))
        try FileManager.default.createSymbolicLink(atPath: root + "/var/log/libvirt", withDestinationPath: lab.daemonPath("log"))
        let image = root + "/var/lib/libvirt/qemu/save/\(LibvirtLab.domain).save"
        let arguments = ["diagnose", "--libvirt", LibvirtLab.domain, "--libvirt-root", root]
        let result = try StatetoolRunner.run(arguments + ["--json"])
        #expect(result.status == 1, "\(result.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stderr)")
        #expect(json["verdict"] as? String == "fixable", "\(result.stdout)")
        #expect(json["file"] as? String == image)
        #expect(json["sharedDirectory"] as? String == lab.share)
        let cause = try #require((json["causes"] as? [[String: Any]])?.first)
        #expect(cause["kind"] as? String == "missing-paths")
        let evidence = cause["evidence"] as? [[String: Any]] ?? []
        #expect(evidence.contains { ($0["path"] as? String)?.hasSuffix("-fs0-virtiofsd.log") == true && $0["source"] as? String == "virtiofsd" }, "\(evidence)")

        // Its bundle: the state and device sections of the image, libvirt's logs, no name
        // of the share (doomed/ and c.txt, gone from it, included), no RAM, the same diagnosis.
        let bundle = lab.path("report.tar.zst")
        let bundled = try StatetoolRunner.run(arguments + ["--bundle", bundle])
        #expect(bundled.status == 1, "\(bundled.stderr)")
        let unpacked = lab.path("unpacked")
        try FileManager.default.createDirectory(atPath: unpacked, withIntermediateDirectories: true)
        #expect(try ProcessRunner.run("/usr/bin/tar", ["--zstd", "-xf", bundle, "-C", unpacked]).status == 0)
        let members = try #require(FileManager.default.enumerator(atPath: unpacked)?.allObjects as? [String])
            .filter { !$0.hasSuffix("/") && !["logs", "sections", "state"].contains($0) }
        #expect(members.contains { $0.hasPrefix("logs/") && $0.hasSuffix("-fs0-virtiofsd.log") }, "\(members)")
        #expect(members.contains { $0.hasPrefix("logs/") && $0.hasSuffix("\(LibvirtLab.domain).log") }, "\(members)")
        let shareNames = try DiagnoseBundleTests.names(under: lab.share).union(["doomed", "c.txt"])
        for member in members {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: unpacked + "/" + member))
            #expect(DiagnoseBundleTests.words(bytes).intersection(shareNames).isEmpty, "\(member)")
            #expect(bytes.range(of: Data(lab.share.utf8)) == nil, "\(member) holds the share's path")
            #expect(bytes.range(of: Data("QEVM".utf8)) == nil, "\(member) holds a migration stream")
            #expect(bytes.range(of: Data("LibvirtQemudSave".utf8)) == nil, "\(member) holds the save image")
        }
        let again = try StatetoolRunner.run(["diagnose", "--json", bundle])
        let againJSON = try #require(try JSONSerialization.jsonObject(with: Data(again.stdout.utf8)) as? [String: Any], "\(again.stderr)")
        #expect(againJSON["verdict"] as? String == "fixable")
        #expect((againJSON["causes"] as? [[String: Any]])?.compactMap { $0["kind"] as? String } == ["missing-paths"])
        #expect(againJSON["device"] as? String == json["device"] as? String)

        let fixed = lab.path("fixed.save")
        let applied = try StatetoolRunner.run(arguments + ["--fix", "-o", fixed])
        #expect(applied.status == 0, "\(applied.stderr)")
        try FileManager.default.removeItem(atPath: image)
        try FileManager.default.copyItem(atPath: fixed, toPath: image)
        let started = try lab.start()
        #expect(started.status == 0, "virsh start from the fixed managed save failed: \(started.stderr)")
        let read = try lab.readHeldFiles()
        let console = try lab.console()
        #expect(read == LibvirtLab.heldFilesWithoutDoomed, "\(console)")
    }
}
