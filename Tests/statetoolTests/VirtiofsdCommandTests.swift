import Foundation
import TestSupport
import Testing

/// inspect's virtiofsd summary, diff --semantic and preflight, on the real captures.
@Suite final class VirtiofsdCommandTests {
    let scratch: ScratchDirectory

    init() throws {
        scratch = try ScratchDirectory("virtiofsd")
    }

    @Test func inspectSummarisesAVirtiofsdPayload() throws {
        let result = try StatetoolRunner.run(["inspect", Fixtures.state("s1-D-more-open")])
        #expect(result.status == 0)
        #expect(result.stdout.contains("\nvirtiofsd       state V2: 5228 inodes (root 1, path 5227), 205 open handles\n"))
        #expect(result.stdout.contains("\nnext ids        inode 5405, handle 1091\n"))
        #expect(result.stdout.contains("\noptions         announce_submounts\n"))
        #expect(result.stdout.contains("\nmount paths     none\n"))
        #expect(!result.stdout.contains("\ninodes\n"))

        let s3 = try StatetoolRunner.run(["inspect", Fixtures.state("s3-file-handles")])
        #expect(s3.stdout.contains("\nvirtiofsd       state V2: 5222 inodes (root 1, file-handle 5221), 200 open handles\n"))
        #expect(s3.stdout.contains("\nmount paths     27 -> .\n"))
        let s2 = try StatetoolRunner.run(["inspect", Fixtures.state("s2-verify-handles")])
        #expect(s2.stdout.contains("\nfile handles    5222 inodes carry one to verify\n"))

        let plain = try StatetoolRunner.run(["inspect", StatetoolRunner.sample("good.state")])
        #expect(!plain.stdout.contains("virtiofsd"))
    }

    @Test func inspectDecodeListsEveryInodeAndHandle() throws {
        let result = try StatetoolRunner.run(["inspect", "--decode", Fixtures.state("s1-A-running")])
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let inodes = try #require(lines.firstIndex(of: "inodes"))
        let handles = try #require(lines.firstIndex(of: "handles"))
        #expect(handles - inodes - 2 == 5222)
        #expect(lines[inodes + 2] == "         1         3  root         .")
        #expect(lines[inodes + 3] == "         2        23  path         tree")
        #expect(lines.contains("        12        14  path         tree/d07"))
        #expect(lines.count - 1 - handles - 2 == 200)
        #expect(lines[handles + 2] == "       884        55  O_RDONLY|O_LARGEFILE        tree/d00/s00/file-00000-8d47b7f12ea64b3b5ab0a812.dat")

        let json = try StatetoolRunner.run(["inspect", "--json", Fixtures.state("s1-A-running")]).jsonObject()
        let state = try #require(json["virtiofsd"] as? [String: Any])
        #expect(state["version"] as? Int == 2)
        let inodeList = try #require(state["inodes"] as? [[String: Any]])
        #expect(inodeList.count == 5222)
        #expect(inodeList[11]["id"] as? Int == 12)
        #expect(inodeList[11]["path"] as? String == "tree/d07")
        #expect(inodeList[11]["kind"] as? String == "path")
        #expect(inodeList[11]["refcount"] as? Int == 14)
        let handleList = try #require(state["handles"] as? [[String: Any]])
        #expect(handleList.count == 200)
        #expect(handleList[0]["flags"] as? Int == 0x8000)
        #expect(handleList[0]["flagNames"] as? String == "O_RDONLY|O_LARGEFILE")
    }

    @Test func inspectReportsAPayloadThatDoesNotDecode() throws {
        let stream = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.state("s1-A-running"))))
        // Chunk 0's body starts at 4. Payload: 01 (V2), e6 28 (5222 inodes), 01 (id), 03 (refcount),
        // 00 (root), 00 (no file handle): make that option tag 2.
        var damaged = stream
        #expect(damaged[4..<11] == [0x01, 0xe6, 0x28, 0x01, 0x03, 0x00, 0x00])
        damaged[4 + 6] = 2
        let file = scratch.url("damaged.state").path
        try Data(damaged).write(to: URL(fileURLWithPath: file))
        let result = try StatetoolRunner.run(["inspect", file])
        #expect(result.status == 0)
        #expect(result.stdout.contains("\nvirtiofsd       begins like a virtiofsd state but does not decode: invalid-option-tag at payload offset 6: inodes[0].file_handle: option tag 2, not 0 or 1\n"))
        let json = try StatetoolRunner.run(["inspect", "--json", file]).jsonObject()
        let error = try #require(json["virtiofsdError"] as? [String: Any])
        #expect(error["kind"] as? String == "invalid-option-tag")
        #expect(error["payloadOffset"] as? Int == 6)
    }

    /// Only a payload whose very first byte is a version tag is taken for a state:
    /// a real state that starts in a later chunk is not.
    @Test func aStateMustStartThePayload() throws {
        let stream = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.state("s1-A-running"))))
        let file = scratch.url("prefixed.state").path
        try Data([0, 0, 0, 1, 0x74] + stream).write(to: URL(fileURLWithPath: file))
        let result = try StatetoolRunner.run(["inspect", "--json", file])
        #expect(result.status == 0)
        let json = try result.jsonObject()
        #expect(json["chunks"] as? Int == 5)
        #expect(json["virtiofsd"] == nil)
        #expect(json["virtiofsdError"] == nil)
    }

    @Test func semanticDiffMatchesInodesByPath() throws {
        let same = try StatetoolRunner.run(["diff", "--semantic", Fixtures.state("s1-A-running"), Fixtures.state("s1-E-resaved-on-dst")])
        #expect(same.status == 0)
        #expect(same.stdout.hasSuffix("virtiofsd states are the same by meaning\n"))

        let migration = try Fixtures.migrationFile("s1-D-more-open")
        let different = try StatetoolRunner.run(["diff", "--semantic", "--json", Fixtures.state("s1-A-running"), migration])
        #expect(different.status == 1)
        let report = try different.jsonObject()
        #expect(report["identical"] as? Bool == false)
        let differences = try #require(report["differences"] as? [[String: Any]])
        let added = differences.filter { $0["change"] as? String == "added" && $0["subject"] as? String == "inode" }.compactMap { $0["key"] as? String }
        #expect(added == ["extra", "extra/late-open-00.txt", "extra/late-open-01.txt", "extra/late-open-02.txt", "extra/late-open-03.txt", "extra/late-open-04.txt"])
        #expect(differences.contains { $0["subject"] as? String == "handle" && $0["key"] as? String == "1086" && $0["detail"] as? String == "on extra/late-open-00.txt, O_RDONLY|O_LARGEFILE" })
        #expect(differences.contains { $0["key"] as? String == "next_inode" && $0["detail"] as? String == "5399 -> 5405" })

        let notAState = try StatetoolRunner.run(["diff", "--semantic", StatetoolRunner.sample("good.state"), Fixtures.state("s1-A-running")])
        #expect(notAState.status == 2)
        #expect(notAState.stderr == "\(StatetoolRunner.sample("good.state")): error: not the state of a back-end statetool knows (virtiofsd, passt)\n")
    }

    /// The share rebuilt from MANIFEST.md: s1-A resolves on it; without tree/d07 exactly the
    /// inodes and handles the real virtiofsd named are reported, and inode 12 first.
    @Test func preflightNamesWhatTheRealVirtiofsdNamed() throws {
        let share = scratch.url("share"), broken = scratch.url("share-broken")
        try RealPeers.makeShare(at: share)
        try RealPeers.makeShare(at: broken, broken: true)

        let clean = try StatetoolRunner.run(["preflight", Fixtures.state("s1-A-running"), "--shared-dir", share.path])
        #expect(clean.status == 0, "\(clean.stdout)\(clean.stderr)")
        #expect(clean.stdout.hasSuffix("""
            checked against \(share.path): every inode resolves
            needs: options announce-submounts, 5422 descriptors for the guest's inodes and handles

            """))

        let log = try String(contentsOf: Fixtures.directory.appendingPathComponent("logs/s1-dst-fail-guesterror.virtiofsd.log"), encoding: .utf8)
        let loggedInodes = log.split(separator: "\n").compactMap { line -> Int? in
            guard let range = line.range(of: "Invalid inode ") else { return nil }
            return Int(line[range.upperBound...].prefix { $0.isNumber })
        }
        let loggedHandles = log.split(separator: "\n").compactMap { line -> Int? in
            guard let range = line.range(of: "Invalid handle ") else { return nil }
            return Int(line[range.upperBound...].prefix { $0.isNumber })
        }
        #expect(loggedInodes.count == 261)
        #expect(loggedHandles.count == 10)

        // The same state as a stream, a bare payload and a whole (zstd) migration file.
        let payload = scratch.url("s1-A.payload").path
        #expect(try StatetoolRunner.run(["payload", Fixtures.state("s1-A-running"), "-o", payload]).status == 0)
        let inputs = [
            (Fixtures.state("s1-A-running"), "state stream"), (payload, "payload"),
            (Fixtures.compressedMigrationFile, "migration file, device 0000:00:01.0/vhost-user-fs"),
        ]
        for (input, origin) in inputs {
            let result = try StatetoolRunner.run(["preflight", "--json", input, "--shared-dir", broken.path])
            #expect(result.status == 1)
            let report = try result.jsonObject()
            #expect(report["origin"] as? String == origin)
            #expect(report["failingInodes"] as? [Int] == loggedInodes)
            #expect(Set(report["failingHandles"] as? [Int] ?? []) == Set(loggedHandles))
            #expect(report["uncheckedInodes"] as? [Int] == [])
            let first = try #require(report["firstFailure"] as? [String: Any])
            #expect(first["id"] as? Int == 12)
            #expect(first["reason"] as? String == "Opening tree/d07: No such file or directory")
        }
        let abortLog = try String(contentsOf: Fixtures.directory.appendingPathComponent("logs/s1-dst-fail-abort.virtiofsd.log"), encoding: .utf8)
        #expect(abortLog.contains("Failed to load state: Inode 12: Opening /srv/share-broken/tree/d07: No such file or directory"))

        let text = try StatetoolRunner.run(["preflight", Fixtures.state("s1-A-running"), "--shared-dir", broken.path])
        #expect(text.stdout.contains("checked against \(broken.path): 261 inodes would be invalid, 10 open handles would fail\n"))
        #expect(text.stdout.contains("first failure (where --migration-on-error=abort stops): inode 12: Opening tree/d07: No such file or directory\n"))
        #expect(text.stdout.contains("       954  on inode 1936 tree/d07/s00/file-01750-5ffde9f3051532c7e4601bd2.dat, O_RDONLY|O_LARGEFILE\n"))
    }

    /// The fixture's file handles name inodes (and their generations) of the capture machine's file
    /// system; the files of a share rebuilt from the manifest are other inodes, so every handle is
    /// stale here: virtiofsd's loader stops at the first it meets, 5398 (the root loads first,
    /// swapped out for the last inode), and guest-error makes all 5221 invalid.
    @Test func preflightOpensTheFixtureFileHandlesAndFindsThemStale() throws {
        let share = scratch.url("share")
        try RealPeers.makeShare(at: share)
        let result = try StatetoolRunner.run(["preflight", "--json", Fixtures.state("s3-file-handles"), "--shared-dir", share.path])
        #expect(result.status == 1)
        let report = try result.jsonObject()
        #expect(report["uncheckedInodes"] as? [Int] == [])
        #expect((report["failingInodes"] as? [Int])?.count == 5221)
        #expect((report["failingHandles"] as? [Int])?.count == 200)
        let first = try #require(report["firstFailure"] as? [String: Any])
        #expect(first["id"] as? Int == 5398)
        #expect(first["reason"] as? String == "Opening file handle: Stale file handle")
        let inodes = try #require(report["fileHandleInodes"] as? [[String: Any]])
        #expect(inodes.count == 5221)
        #expect(inodes.allSatisfy { $0["status"] as? String == "stale" && $0["reason"] as? String == "Opening file handle: Stale file handle" })
        #expect(inodes.first?["id"] as? Int == 5398)
    }

    @Test func preflightOfAMissingDirectoryIsTrouble() throws {
        let result = try StatetoolRunner.run(["preflight", Fixtures.state("s1-A-running"), "--shared-dir", "/nonexistent/share"])
        #expect(result.status == 2)
        #expect(result.stderr == "\(Fixtures.state("s1-A-running")): error: cannot open the shared directory /nonexistent/share: No such file or directory\n")
    }
}
