import Foundation
import TestSupport
import Testing

/// `diagnose` proven on the real thing: the fixture guest's migration file
/// restored into real QEMU 10.0.2 with a real virtiofsd 1.13, the restore
/// failing, diagnose reading the real logs, and its fix making the restore
/// succeed with the guest running on.
@Suite(.serialized) final class DiagnoseRealTests {
    let scratch: ScratchDirectory

    init() throws {
        try RealPeers.requireVirtiofsd()
        try #require(FileManager.default.isExecutableFile(atPath: FixtureRestore.qemu), "QEMU is missing: run Scripts/install-peers")
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

    @Test func aLostDirectoryIsNamedFromTheRealLogsAndFixed() throws {
        try RealPeers.makeShare(at: scratch.url("broken"), broken: true)
        let file = try Fixtures.migrationFile("s1-A-running")
        let failed = try FixtureRestore(migrationFile: file, share: path("broken"), in: scratch.url)
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
        let restore = try FixtureRestore(migrationFile: path("fixed.mig"), share: path("broken"), in: scratch.url, probes: RecoveryTests.probes)
        #expect(restore.completed, "\(restore.virtiofsdLog)")
        #expect(restore.output == [
            "hello from the host", RecoveryTests.fd70, RecoveryTests.allDirectories.replacingOccurrences(of: "d07 ", with: ""),
            "cat: read error: Bad file descriptor", "25",
        ])
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
}
