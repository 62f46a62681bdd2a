import Foundation
import TestSupport
import Testing

/// `diagnose` on the fixture guest's real state and real failure logs (QEMU
/// 10.0.13 + virtiofsd 1.13.2), on QEMU 11.1's wordings, and on broken files.
@Suite final class DiagnoseTests {
    let scratch: ScratchDirectory

    init() throws {
        scratch = try ScratchDirectory("diagnose")
    }

    private func path(_ name: String) -> String { scratch.path(name) }
    static func log(_ name: String) -> String { Fixtures.directory.appendingPathComponent("logs/\(name)").path }
    static let device = "0000:00:01.0/vhost-user-fs"

    /// Runs `diagnose --json ARGUMENTS`: its status and object.
    private func diagnose(_ arguments: [String]) throws -> (status: Int32, json: [String: Any]) {
        let result = try StatetoolRunner.run(["diagnose", "--json"] + arguments)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stderr)")
        return (result.status, json)
    }

    private func kinds(_ json: [String: Any]) -> [String] {
        (json["causes"] as? [[String: Any]] ?? []).compactMap { $0["kind"] as? String }
    }

    private func evidence(_ json: [String: Any], cause: Int = 0) -> [[String: Any]] {
        (json["causes"] as? [[String: Any]])?[cause]["evidence"] as? [[String: Any]] ?? []
    }

    private func fix(_ json: [String: Any]) -> [String: Any] { json["fix"] as? [String: Any] ?? [:] }

    @Test func withNothingGivenItNamesWhatToAdd() throws {
        let text = try StatetoolRunner.run(["diagnose"])
        #expect(text.status == 1)
        #expect(text.stdout.hasPrefix("verdict: unknown\n"))
        #expect(text.stdout.contains("\nadd: FILE: the migration file or save image, to check its state\n"))
        #expect(text.stdout.contains("\nadd: --log FILE: QEMU's standard error or libvirt's domain log, and the back-end's log, to see what failed\n"))
        let (status, json) = try diagnose([])
        #expect(status == 1)
        #expect(json["verdict"] as? String == "unknown")
        #expect(kinds(json) == [])
        #expect((json["missing"] as? [String])?.count == 2)
        #expect(fix(json)["kind"] as? String == "none")
    }

    @Test func qemusLinesAloneAskForTheBackEndsLog() throws {
        let (status, json) = try diagnose(["--log", Self.log("s1-dst-fail-abort.qemu-stderr.log")])
        #expect(status == 1)
        #expect(json["verdict"] as? String == "unknown")
        #expect(kinds(json) == ["unknown"])
        #expect(evidence(json).map { $0["line"] as? Int } == [1, 3, 4])
        #expect(evidence(json).map { $0["source"] as? String } == ["qemu", "qemu", "qemu"])
        #expect(json["device"] as? String == Self.device)
        #expect((json["missing"] as? [String])?.contains { $0.contains("NAME-fs0-virtiofsd.log") } == true)
    }

    @Test func theAbortLogsNameTheMissingDirectoryAndAskForTheFile() throws {
        let (status, json) = try diagnose([
            "--log", Self.log("s1-dst-fail-abort.qemu-stderr.log"), "--log", Self.log("s1-dst-fail-abort.virtiofsd.log"),
        ])
        #expect(status == 1)
        #expect(json["verdict"] as? String == "unknown")
        #expect(kinds(json) == ["missing-paths"])
        let line = try #require(evidence(json).first)
        #expect(line["source"] as? String == "virtiofsd")
        #expect(line["path"] as? String == Self.log("s1-dst-fail-abort.virtiofsd.log"))
        #expect(line["line"] as? Int == 4)
        #expect(line["offset"] as? Int == 320)
        #expect((json["causes"] as? [[String: Any]])?.first?["device"] as? String == Self.device)
    }

    @Test func aMissingDirectoryIsFixableAndFixed() throws {
        try RealPeers.makeShare(at: scratch.url("broken"), broken: true)
        let state = Fixtures.state("s1-A-running")
        let arguments = [state, "--shared-dir", path("broken"), "--log", Self.log("s1-dst-fail-abort.virtiofsd.log")]
        let (status, json) = try diagnose(arguments + ["-o", path("fixed.state")])
        #expect(status == 1)
        #expect(json["verdict"] as? String == "fixable")
        #expect(kinds(json) == ["missing-paths"])
        let items = evidence(json)
        #expect(items.first?["source"] as? String == "share")
        #expect(items.first?["text"] as? String == "inode 12: Opening tree/d07: No such file or directory")
        #expect(items.contains { $0["source"] as? String == "virtiofsd" && $0["line"] as? Int == 4 })
        #expect(fix(json)["command"] as? [String] == ["statetool", "retarget", state, "--shared-dir", path("broken"), "--drop-missing", "-o", path("fixed.state")])

        let text = try StatetoolRunner.run(["diagnose"] + arguments)
        #expect(text.stdout.hasPrefix("verdict: fixable\ncause missing-paths: 261 inodes and 10 open handles of the state are not in \(path("broken")): tree/d07 (inode 12)\n"))
        #expect(text.stdout.contains("\nfix: statetool retarget \(state) --shared-dir \(path("broken")) --drop-missing -o \(state.replacingOccurrences(of: "s1-A-running.state", with: "s1-A-running.fixed.state"))\n"))

        let fixed = try StatetoolRunner.run(["diagnose", "--fix", "-o", path("fixed.state")] + arguments)
        #expect(fixed.status == 0, "\(fixed.stderr)")
        #expect(fixed.stdout.contains("\nfixed: wrote \(path("fixed.state"))\n"))
        #expect(try StatetoolRunner.run(["preflight", path("fixed.state"), "--shared-dir", path("broken")]).status == 0)
        let again = try diagnose([path("fixed.state"), "--shared-dir", path("broken")])
        #expect(again.status == 0)
        #expect(again.json["verdict"] as? String == "restorable")
    }

    @Test func aMovedDirectoryIsFollowedWithARename() throws {
        let share = scratch.url("moved")
        try RealPeers.makeShare(at: share)
        try FileManager.default.moveItem(at: share.appendingPathComponent("tree/d07"), to: share.appendingPathComponent("tree/moved-d07"))
        let state = Fixtures.state("s1-A-running")
        let (_, json) = try diagnose([state, "--shared-dir", share.path, "-o", path("renamed.state")])
        #expect(json["verdict"] as? String == "fixable")
        #expect(kinds(json) == ["moved-paths"])
        #expect(evidence(json).first?["text"] as? String == "tree/moved-d07: 10 entries of tree/d07 (inode 12)")
        #expect(fix(json)["command"] as? [String] == ["statetool", "retarget", state, "--shared-dir", share.path, "--rename", "tree/d07=tree/moved-d07", "-o", path("renamed.state")])
        let fixed = try StatetoolRunner.run(["diagnose", state, "--shared-dir", share.path, "--fix", "-o", path("renamed.state")])
        #expect(fixed.status == 0, "\(fixed.stderr)")
        #expect(try StatetoolRunner.run(["preflight", path("renamed.state"), "--shared-dir", share.path]).status == 0)
    }

    @Test func theWholeShareIsRestorable() throws {
        try RealPeers.makeShare(at: scratch.url("share"))
        let text = try StatetoolRunner.run(["diagnose", Fixtures.state("s1-A-running"), "--shared-dir", path("share")])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.hasPrefix("verdict: restorable\n  Nothing predicts a failure: checked "))
        #expect(text.stdout.contains("\nchecked: every inode and open handle of the state against \(path("share")), as virtiofsd 1.13's loader opens them\n"))
        let refused = try StatetoolRunner.run(["diagnose", Fixtures.state("s1-A-running"), "--shared-dir", path("share"), "--fix", "-o", path("out.state")])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("--fix refused: the verdict is restorable, not fixable"))
        #expect(!FileManager.default.fileExists(atPath: path("out.state")))
    }

    @Test func aVerifyHandlesStateOnACopyIsFixedByStrippingTheHandles() throws {
        try RealPeers.makeShare(at: scratch.url("copy"))
        let state = Fixtures.state("s2-verify-handles")
        let (_, json) = try diagnose([state, "--shared-dir", path("copy"), "--log", Self.log("s2-dst-fail-copy.virtiofsd.log"), "-o", path("s.state")])
        #expect(json["verdict"] as? String == "fixable")
        #expect(kinds(json) == ["file-handle-differs"])
        #expect(evidence(json).contains { $0["line"] as? Int == 4 && $0["source"] as? String == "virtiofsd" })
        #expect(fix(json)["command"] as? [String] == ["statetool", "retarget", state, "--shared-dir", path("copy"), "--strip-file-handles", "-o", path("s.state")])
    }

    @Test func aFileHandlesStateWithoutTheCapabilityNeedsADifferentDestination() throws {
        let (status, json) = try diagnose(["--log", Self.log("s3-dst-fail-nocaps.virtiofsd.log"), "--log", Self.log("s3-dst-fail-nocaps.qemu-stderr.log")])
        #expect(status == 1)
        #expect(json["verdict"] as? String == "destination")
        #expect(kinds(json) == ["file-handle-capability"])
        #expect(fix(json)["destinationArgs"] as? [String] == ["--modcaps=+dac_read_search"])
    }

    @Test func qemu11RefusesTheFixturesQueues() throws {
        let log = path("qemu11.log")
        try """
            qemu-system-x86_64: VQ 0 vring.num 1024 exceeds allocated max 128
            qemu-system-x86_64: load of migration failed: Invalid argument: error while loading state for instance 0x0 of device '0000:00:01.0/vhost-user-fs': Failed to load element of type virtio for virtio

            """.write(toFile: log, atomically: true, encoding: .utf8)
        let (status, json) = try diagnose(["--log", log])
        #expect(status == 1)
        #expect(json["verdict"] as? String == "destination")
        #expect(kinds(json) == ["virtqueue-size"])
        #expect(evidence(json).map { $0["line"] as? Int } == [1, 2])
        #expect(json["device"] as? String == Self.device)
        #expect(fix(json)["destinationArgs"] as? [String] == ["queue-size=1024"])
    }

    @Test func aDescriptorLimitTooLowNeedsAHigherOne() throws {
        try RealPeers.makeShare(at: scratch.url("share"))
        let (status, json) = try diagnose([Fixtures.state("s1-A-running"), "--shared-dir", path("share"), "--destination-args=--rlimit-nofile=2000"])
        #expect(status == 1)
        #expect(json["verdict"] as? String == "destination")
        #expect(kinds(json) == ["descriptor-limit"])
        #expect(fix(json)["destinationArgs"] as? [String] == ["--rlimit-nofile=7000"])
    }

    @Test func aCutStateIsATruncatedFile() throws {
        let whole = try Data(contentsOf: URL(fileURLWithPath: Fixtures.state("s1-A-running")))
        try whole.prefix(100_000).write(to: scratch.url("cut.state"))
        let (status, json) = try diagnose([path("cut.state"), "--shared-dir", "/tmp"])
        #expect(status == 1)
        #expect(json["verdict"] as? String == "unrecoverable")
        #expect(kinds(json) == ["truncated-file"])
        #expect(evidence(json).first?["source"] as? String == "file")
        #expect(evidence(json).first?["offset"] as? Int == 65540)
    }

    @Test func aDamagedStateIsUnrecoverable() throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixtures.state("s1-A-running"))))
        for index in 4..<40 { bytes[index] = 0xFF }
        try Data(bytes).write(to: scratch.url("damaged.state"))
        let (status, json) = try diagnose([path("damaged.state"), "--shared-dir", "/tmp"])
        #expect(status == 1)
        #expect(json["verdict"] as? String == "unrecoverable")
        #expect(kinds(json) == ["damaged-state"])
    }

    @Test func anotherDirectoryIsTheWrongShare() throws {
        try FileManager.default.createDirectory(at: scratch.url("empty"), withIntermediateDirectories: true)
        let (status, json) = try diagnose([Fixtures.state("s1-A-running"), "--shared-dir", path("empty")])
        #expect(status == 1)
        #expect(json["verdict"] as? String == "destination")
        #expect(kinds(json) == ["wrong-share"])
    }

    @Test func aDomainWithNothingInLibvirtsPlacesNamesWhatIsAbsent() throws {
        let result = try StatetoolRunner.run(["diagnose", "--libvirt", "vm", "--libvirt-root", path("root")])
        #expect(result.status == 1)
        #expect(result.stdout.hasPrefix("verdict: unknown\n"))
        #expect(result.stderr == "note: \(path("root"))/var/lib/libvirt/qemu/save/vm.save does not exist\nnote: \(path("root"))/var/log/libvirt/qemu/vm.log does not exist\n")
    }

    @Test func usageErrors() throws {
        #expect(try StatetoolRunner.run(["diagnose", "--fix"]).status == 64)
        #expect(try StatetoolRunner.run(["diagnose", "-", "--fix", "-o", path("x")]).status == 64)
        #expect(try StatetoolRunner.run(["diagnose", "x.mig", "--libvirt", "vm"]).status == 64)
        #expect(try StatetoolRunner.run(["diagnose", "--destination-args=--rlimit-nofile=x"]).status == 64)
        let missing = try StatetoolRunner.run(["diagnose", "--log", path("nothing.log")])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("\(path("nothing.log")): error: cannot read the log: open failed: "))
    }
}
