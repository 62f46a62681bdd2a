import Crypto
import Foundation
import StateStream
import StatetoolKit
import TestSupport
import Testing

/// `diagnose --bundle` on the fixture guest's migration file (s1-A), its real
/// failure logs and the share rebuilt without tree/d07: the bundle holds no
/// guest RAM, no name of the share, the originals' hashes, and diagnoses the
/// same as the original.
@Suite final class DiagnoseBundleTests {
    let scratch: ScratchDirectory

    init() throws {
        scratch = try ScratchDirectory("diagnose-bundle")
    }

    private func path(_ name: String) -> String { scratch.path(name) }

    /// Every file and directory name under `root`, and `root` itself.
    static func names(under root: String) throws -> Set<String> {
        var names: Set<String> = []
        let enumerator = try #require(FileManager.default.enumerator(atPath: root))
        while let relative = enumerator.nextObject() as? String {
            names.insert((relative as NSString).lastPathComponent)
        }
        return names
    }

    /// The runs of name characters in `bytes` (letters, digits, `.`, `_`, `-`, and bytes past ASCII).
    static func words(_ bytes: Data) -> Set<String> {
        var words: Set<String> = []
        var run: [UInt8] = []
        for byte in bytes {
            let inName = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                || byte == 0x2e || byte == 0x5f || byte == 0x2d || byte >= 0x80
            if inName {
                run.append(byte)
            } else if !run.isEmpty {
                words.insert(String(decoding: run, as: UTF8.self))
                run.removeAll(keepingCapacity: true)
            }
        }
        if !run.isEmpty { words.insert(String(decoding: run, as: UTF8.self)) }
        return words
    }

    private func sha256(_ path: String) throws -> String {
        SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)).map { String(format: "%02x", $0) }.joined()
    }

    private func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    private func kinds(_ json: [String: Any]) -> [String] {
        (json["causes"] as? [[String: Any]] ?? []).compactMap { $0["kind"] as? String }
    }

    @Test func aBundleHoldsNoRAMAndNoShareNameAndDiagnosesTheSame() throws {
        try RealPeers.makeShare(at: scratch.url("broken"), broken: true)
        let share = path("broken")
        let file = try Fixtures.migrationFile("s1-A-running")
        let logs = [DiagnoseTests.log("s1-dst-fail-abort.qemu-stderr.log"), DiagnoseTests.log("s1-dst-fail-abort.virtiofsd.log")]
        let arguments = [file, "--shared-dir", share] + logs.flatMap { ["--log", $0] }

        let original = try StatetoolRunner.run(["diagnose", "--json"] + arguments)
        #expect(original.status == 1, "\(original.stderr)")
        let originalJSON = try json(original.stdout)
        #expect(originalJSON["verdict"] as? String == "fixable")
        #expect(kinds(originalJSON) == ["missing-paths"])

        let bundle = path("report.tar.zst")
        let made = try StatetoolRunner.run(["diagnose"] + arguments + ["--bundle", bundle])
        #expect(made.status == 1, "\(made.stderr)")
        #expect(made.stdout.hasPrefix("verdict: fixable\n"))
        #expect(made.stdout.contains("\nbundle: wrote \(bundle) ("))
        #expect(made.stdout.contains(" members, 31 device sections; 5031 names pseudonymised)\n"))

        // No RAM: the bundle is a sliver of the file, and no member is a migration stream.
        let bundleSize = try #require(try FileManager.default.attributesOfItem(atPath: bundle)[.size] as? Int)
        let fileSize = try #require(try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int)
        #expect(bundleSize * 100 < fileSize, "bundle \(bundleSize) bytes, file \(fileSize)")

        let unpacked = path("unpacked")
        try FileManager.default.createDirectory(atPath: unpacked, withIntermediateDirectories: true)
        let listing = try ProcessRunner.run("/usr/bin/tar", ["--zstd", "-tvf", bundle])
        #expect(listing.status == 0, "\(listing.stderr)")
        let members = listing.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").last.map(String.init) }
        #expect(Array(members.prefix(6)) == [
            "manifest.json", "diagnosis.json", "share-check.json", "state/virtiofsd.state",
            "logs/1-s1-dst-fail-abort.qemu-stderr.log", "logs/2-s1-dst-fail-abort.virtiofsd.log",
        ])
        #expect(members.dropFirst(6).allSatisfy { $0.hasPrefix("sections/") })
        #expect(members.contains("sections/38-0000_00_01.0_vhost-user-fs.bin"))
        #expect(members.last == "sections/vmdesc.json")
        #expect(try ProcessRunner.run("/usr/bin/tar", ["--zstd", "-xf", bundle, "-C", unpacked]).status == 0)

        // The bundled state is a valid state stream of the same shape.
        let inspected = try StatetoolRunner.run(["validate", unpacked + "/state/virtiofsd.state"])
        #expect(inspected.status == 0, "\(inspected.stderr)")

        // No name of the share, and not its path, in any member; no QEMU file magic either.
        let shareNames = try Self.names(under: share)
        #expect(shareNames.count == 4_798)
        for member in members {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: unpacked + "/" + member))
            let found = Self.words(bytes).intersection(shareNames)
            #expect(found.isEmpty, "\(member) holds \(found.sorted().prefix(5))")
            #expect(bytes.range(of: Data(share.utf8)) == nil, "\(member) holds the share's path")
            #expect(bytes.range(of: Data("QEVM".utf8)) == nil, "\(member) holds a migration stream")
        }
        // The missing directory is there under its pseudonym.
        let bundledDiagnosis = try json(String(decoding: try Data(contentsOf: URL(fileURLWithPath: unpacked + "/diagnosis.json")), as: UTF8.self))
        #expect(bundledDiagnosis["verdict"] as? String == "fixable")
        #expect(bundledDiagnosis["sharedDirectory"] as? String == "/shared-directory")

        // The share check, per inode: the failing ids and reasons, names pseudonymised.
        let shareCheck = try json(String(decoding: try Data(contentsOf: URL(fileURLWithPath: unpacked + "/share-check.json")), as: UTF8.self))
        #expect(shareCheck["failingInodeCount"] as? Int == 261)
        #expect(shareCheck["failingHandleCount"] as? Int == 10)
        let failing = try #require(shareCheck["failingInodes"] as? [[String: Any]])
        #expect(failing.count == 261)
        #expect(failing.first?["id"] as? Int == 12)
        #expect(failing.first?["reason"] as? String == "Opening n1/n11: No such file or directory")

        // The manifest: the version, the originals' hashes.
        let manifest = try json(String(decoding: try Data(contentsOf: URL(fileURLWithPath: unpacked + "/manifest.json")), as: UTF8.self))
        #expect(manifest["schema"] as? String == "urn:statetool:bundle-manifest:1")
        let version = try StatetoolRunner.run(["--version"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(manifest["statetoolVersion"] as? String == version)
        let originals = try #require(manifest["originals"] as? [[String: Any]])
        #expect(originals.map { $0["role"] as? String } == ["file", "log", "log"])
        #expect(try originals.map { $0["sha256"] as? String } == ([file] + logs).map(sha256))
        #expect(originals.map { $0["size"] as? Int } == [fileSize] + (try logs.map { try FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int }))
        #expect(try StatetoolRunner.run(["schema", "bundle-manifest"]).status == 0)
        let validator = StatetoolRunner.packageDirectory.appendingPathComponent("Tests/Schemas/validate.py").path
        for (schema, member) in [("bundle-manifest", "manifest.json"), ("diagnose", "diagnosis.json")] {
            let checked = try ProcessRunner.run("/usr/bin/python3", [validator, schema, unpacked + "/" + member])
            #expect(checked.status == 0, "\(member) is not valid against schemas/\(schema).schema.json:\n\(checked.stdout)\(checked.stderr)")
        }
        // The device sections: no RAM section, and the back-end state left out of its section.
        let sections = try #require(manifest["sections"] as? [[String: Any]])
        #expect(sections.count == members.count - 7)
        #expect(!sections.contains { ($0["name"] as? String) == "ram" })
        let fs = try #require(sections.first { $0["name"] as? String == "0000:00:01.0/vhost-user-fs" })
        #expect((fs["elided"] as? [[Int]])?.count == 1)
        #expect(fs["complete"] as? Bool == true)

        // The bundle diagnoses the same.
        let again = try StatetoolRunner.run(["diagnose", "--json", bundle])
        #expect(again.status == 1, "\(again.stderr)")
        let againJSON = try json(again.stdout)
        #expect(againJSON["verdict"] as? String == originalJSON["verdict"] as? String)
        #expect(kinds(againJSON) == kinds(originalJSON))
        #expect(againJSON["device"] as? String == originalJSON["device"] as? String)
        let summaries = { (json: [String: Any]) in (json["causes"] as? [[String: Any]] ?? []).map { $0["summary"] as? String ?? "" } }
        #expect(summaries(againJSON).first?.hasPrefix("261 inodes and 10 open handles of the state are not in /shared-directory: ") == true)
        #expect(summaries(originalJSON).first?.hasPrefix("261 inodes and 10 open handles of the state are not in \(share): tree/d07 (inode 12)") == true)
        let evidence = (againJSON["causes"] as? [[String: Any]])?.first?["evidence"] as? [[String: Any]] ?? []
        #expect(evidence.contains { $0["source"] as? String == "virtiofsd" && ($0["path"] as? String)?.hasPrefix(bundle + "/logs/") == true })
        #expect(againJSON["file"] as? String == bundle)
        #expect(try StatetoolRunner.run(["diagnose", bundle]).stdout.hasPrefix("verdict: fixable\n"))
    }

    /// A virtiofsd log whose last attempt is longer than a bundle keeps (5.4 MB of
    /// 3,000-byte lines between its start and its failure): the bundle keeps its last
    /// 4 MiB from a line's start, the failure line with them, and diagnoses the same.
    @Test func aLongLogKeepsItsLastFourMebibytesFromALineStart() throws {
        try RealPeers.makeShare(at: scratch.url("broken"), broken: true)
        let real = try String(contentsOfFile: DiagnoseTests.log("s1-dst-fail-abort.virtiofsd.log"), encoding: .utf8)
        let lines = real.split(separator: "\n").map(String.init)
        let filler = "[2026-11-25T10:21:13Z DEBUG virtiofsd::server] " + String(repeating: "x", count: 2_952) + "\n"
        #expect(filler.utf8.count == 3_000)
        let long = lines.prefix(3).joined(separator: "\n") + "\n" + String(repeating: filler, count: 1_800) + lines.dropFirst(3).joined(separator: "\n") + "\n"
        let log = path("long-virtiofsd.log")
        try Data(long.utf8).write(to: URL(fileURLWithPath: log))
        let arguments = [Fixtures.state("s1-A-running"), "--shared-dir", path("broken"), "--log", log]

        let bundle = path("long.tar.zst")
        let made = try StatetoolRunner.run(["diagnose"] + arguments + ["--bundle", bundle])
        #expect(made.status == 1, "\(made.stderr)")
        let unpacked = path("long")
        try FileManager.default.createDirectory(atPath: unpacked, withIntermediateDirectories: true)
        #expect(try ProcessRunner.run("/usr/bin/tar", ["--zstd", "-xf", bundle, "-C", unpacked]).status == 0)
        let kept = try Data(contentsOf: URL(fileURLWithPath: unpacked + "/logs/1-long-virtiofsd.log"))
        #expect(kept.count <= 4 << 20)
        #expect(kept.count > (4 << 20) - 3_000)
        #expect(kept.first == UInt8(ascii: "["))
        let text = String(decoding: kept, as: UTF8.self)
        #expect(text.hasSuffix(
            "] Migration failed: Failed to load state: Inode 12: Opening /shared-directory/n1/n11: No such file or directory (os error 2)\n"
                + lines.last! + "\n"), "\(text.suffix(300))")

        let original = try json(try StatetoolRunner.run(["diagnose", "--json"] + arguments).stdout)
        let again = try json(try StatetoolRunner.run(["diagnose", "--json", bundle]).stdout)
        #expect(kinds(again) == kinds(original))
        #expect(kinds(again) == ["missing-paths"])
        let evidence = (again["causes"] as? [[String: Any]])?.first?["evidence"] as? [[String: Any]] ?? []
        #expect(evidence.contains { $0["source"] as? String == "virtiofsd" && ($0["text"] as? String)?.contains("Opening /shared-directory/n1/n11") == true }, "\(evidence)")
    }

    /// A bundle reads its inputs more than once: standard input and pipes are refused
    /// before anything is read (exit 64), and nothing is written.
    @Test func aBundleOfStandardInputOrAPipeIsRefused() throws {
        let bundle = path("piped.tar.zst")
        let stdin = try StatetoolRunner.run(["diagnose", "-", "--bundle", bundle], stdin: Data("x".utf8))
        #expect(stdin.status == 64)
        #expect(stdin.stderr.contains("--bundle reads FILE more than once"), "\(stdin.stderr)")
        let fifo = path("log.fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let piped = try StatetoolRunner.run(["diagnose", Fixtures.state("s1-A-running"), "--log", fifo, "--bundle", bundle])
        #expect(piped.status == 64)
        #expect(piped.stderr == "\(fifo): error: a bundle reads its inputs more than once: give a regular file, not standard input or a pipe\n")
        #expect(!FileManager.default.fileExists(atPath: bundle))
    }

    /// A bundle whose manifest does not decode is refused at the manifest's offset (exit 1).
    @Test func aBundleWhoseManifestDoesNotDecodeIsRefusedAtItsOffset() throws {
        let sink = ByteArraySink()
        var writer = TarWriter(into: sink)
        try writer.add(name: "manifest.json", bytes: Array("{}".utf8))
        try writer.finish()
        try Data(sink.bytes).write(to: URL(fileURLWithPath: path("empty.tar")))
        #expect(try ProcessRunner.run("/usr/bin/zstd", ["-q", path("empty.tar"), "-o", path("empty.tar.zst")]).status == 0)
        let result = try StatetoolRunner.run(["diagnose", path("empty.tar.zst")])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.hasPrefix("\(path("empty.tar.zst")): error: not a statetool bundle: "), "\(result.stderr)")
        #expect(result.stderr.contains(": manifest.json does not decode: "), "\(result.stderr)")
        #expect(result.stderr.hasSuffix(" at offset 0\n"), "\(result.stderr)")
    }

    @Test func aBundleThatIsNotOneIsRefusedWithItsOffset() throws {
        // A zstd stream of a tar whose first member is not the manifest is diagnosed as a state (and fails as one);
        // a bundle cut short is refused with the offset where it ends.
        try RealPeers.makeShare(at: scratch.url("broken"), broken: true)
        let bundle = path("report.tar.zst")
        let made = try StatetoolRunner.run([
            "diagnose", Fixtures.state("s1-A-running"), "--shared-dir", path("broken"), "--bundle", bundle,
        ])
        #expect(made.status == 1, "\(made.stderr)")
        let tar = path("report.tar")
        #expect(try ProcessRunner.run("/usr/bin/zstd", ["-d", "-q", bundle, "-o", tar]).status == 0)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: tar))
        try bytes.prefix(700).write(to: URL(fileURLWithPath: path("cut.tar")))
        #expect(try ProcessRunner.run("/usr/bin/zstd", ["-q", path("cut.tar"), "-o", path("cut.tar.zst")]).status == 0)
        let cut = try StatetoolRunner.run(["diagnose", path("cut.tar.zst")])
        #expect(cut.status == 1)
        #expect(cut.stderr.contains("\(path("cut.tar.zst")): error: not a statetool bundle: the archive ends "), "\(cut.stderr)")
    }
}
