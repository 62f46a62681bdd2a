import Foundation
import TestSupport
import Testing

/// The commands that want a back-end state out of a migration file read a
/// real QEMU file from its end: the same bytes as the walk of every byte, a
/// few hundred KB read of 64 MB, and `-v`/`--json` say which path was taken.
@Suite final class TailReadingCommandTests {
    let scratch: ScratchDirectory

    init() throws {
        scratch = try ScratchDirectory("tail")
    }

    private func path(_ name: String) -> String { scratch.path(name) }

    private func contents(_ file: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: file)) }

    @Test(arguments: Fixtures.captures)
    func extractPlacesTheDeviceSectionsFromTheEnd(capture: Fixtures.Capture) throws {
        let file = try Fixtures.migrationFile(capture.name)
        let tail = try StatetoolRunner.run(["extract", file, "-o", path("tail.state"), "--json"])
        #expect(tail.status == 0, "\(tail.stderr)")
        let reading = try #require(try tail.jsonObject()["reading"] as? [String: Any])
        #expect(reading["path"] as? String == "tail")
        #expect(reading["reason"] is NSNull)
        #expect(reading["placedSections"] as? Int == 3)  // vhost-user-fs, acpi_build, globalstate
        #expect(reading["resumedAt"] as? UInt64 == capture.sectionOffset)
        // The last 64 KiB (the description); to place and check three sections, their
        // headers and footers (25 + 5, 24 + 5, 40 + 5), the subsection header (27), each
        // chunk length and the terminator (4 each) and the byte before (1); the 12 bytes
        // sniffed for a save image's magic, one 4 KiB read of the head, and everything
        // from the first placed section to the end.
        let placing = UInt64(25 + 5 + 24 + 5 + 40 + 5 + 27 + 4 * (capture.chunks + 1) + 1)
        let expected = 65536 + placing + 12 + 4096 + (capture.fileSize - capture.sectionOffset)
        #expect(reading["bytesRead"] as? UInt64 == expected)
        #expect(expected < capture.fileSize / 100)

        let walk = try StatetoolRunner.run(["extract", file, "-o", path("walk.state"), "--json", "--full-walk"])
        #expect(walk.status == 0, "\(walk.stderr)")
        let walked = try #require(try walk.jsonObject()["reading"] as? [String: Any])
        #expect(walked["path"] as? String == "walk")
        #expect(walked["reason"] as? String == "a full walk was asked for")
        #expect((walked["bytesRead"] as? UInt64 ?? 0) > capture.fileSize / 100 * 99)
        #expect(try contents(path("tail.state")) == contents(path("walk.state")))
        #expect(try contents(path("tail.state")) == contents(Fixtures.state(capture.name)))
        // The same states, found at the same offsets, with the same problems (none).
        let states = { (result: StatetoolRunner.Result) throws -> [NSDictionary] in
            try #require(try result.jsonObject()["backEndStates"] as? [[String: Any]]).map { state in
                var state = state
                state["output"] = nil
                return NSDictionary(dictionary: state)
            }
        }
        #expect(try states(tail) == states(walk) && !states(tail).isEmpty)
        #expect((try tail.jsonObject()["problems"] as? [Any])?.isEmpty == true)
    }

    @Test func verboseSaysWhichPathAndHowManyBytes() throws {
        let file = try Fixtures.migrationFile("s1-A-running")
        let tail = try StatetoolRunner.run(["extract", file, "-o", path("a.state"), "-v"])
        #expect(tail.status == 0)
        #expect(tail.stderr.hasSuffix("\(file): placed 3 device sections from the end, resumed at offset 63851239; read 400048 bytes\n"))
        let compressed = Fixtures.compressedMigrationFile
        let zstd = try StatetoolRunner.run(["extract", compressed, "-o", path("z.state"), "-v"])
        #expect(zstd.status == 0)
        #expect(zstd.stderr.hasSuffix("\(compressed): walked front to back (zstd-compressed input is read front to back); read 12442336 bytes\n"))
        let piped = try StatetoolRunner.run(["extract", "-", "-o", path("p.state"), "-v"], stdin: try contents(file))
        #expect(piped.status == 0)
        #expect(piped.stderr.hasSuffix("-: walked front to back (the input is no regular file); read 64181491 bytes\n"))
        #expect(try contents(path("a.state")) == contents(path("z.state")))
        #expect(try contents(path("a.state")) == contents(path("p.state")))
    }

    /// A footer the description does not lead to: the walk takes over, says why,
    /// and reports the damage exactly as a walk asked for does.
    @Test func aPlacementThatDoesNotCheckOutFallsBackToTheWalk() throws {
        let capture = Fixtures.captures[0]
        var bytes = try contents(try Fixtures.migrationFile(capture.name))
        bytes[Int(capture.streamEnd) + 4] = 0x27
        let file = path("bad-footer.mig")
        try bytes.write(to: URL(fileURLWithPath: file))
        let tail = try StatetoolRunner.run(["extract", file, "-o", path("t.state"), "-v"])
        let walk = try StatetoolRunner.run(["extract", file, "-o", path("w.state"), "--full-walk"])
        #expect(tail.status == 1 && walk.status == 1)
        let reason = "no footer of section 38 (0000:00:01.0/vhost-user-fs) at offset \(capture.streamEnd), where the JSON description ends it"
        #expect(tail.stderr.contains("\(file): walked front to back (\(reason)); read "))
        #expect(tail.stderr.contains("\(file): error: bad-footer at offset \(capture.streamEnd): section footer 7e + be32 38 expected\n"))
        #expect(walk.stderr.contains("\(file): error: bad-footer at offset \(capture.streamEnd): section footer 7e + be32 38 expected\n"))
    }

    @Test func preflightAndDiffReadFromTheEnd() throws {
        let a = try Fixtures.migrationFile("s1-A-running")
        let b = try Fixtures.migrationFile("s1-D-more-open")
        let share = path("empty-share")
        try FileManager.default.createDirectory(atPath: share, withIntermediateDirectories: true)
        let preflight = try StatetoolRunner.run(["preflight", "--shared-dir", share, a, "--json", "-v"])
        #expect(preflight.status == 1)  // nothing of the guest's share is in an empty folder
        let reading = try #require(try preflight.jsonObject()["reading"] as? [String: Any])
        #expect(reading["path"] as? String == "tail" && reading["bytesRead"] as? UInt64 == 400048)
        #expect(preflight.stderr == "\(a): placed 3 device sections from the end, resumed at offset 63851239; read 400048 bytes\n")
        let state = try StatetoolRunner.run(["preflight", "--shared-dir", share, Fixtures.state("s1-A-running"), "--json"])
        #expect(try state.jsonObject()["reading"] is NSNull)
        var fromFile = try preflight.jsonObject(), fromState = try state.jsonObject()
        for key in ["file", "origin", "reading"] {
            fromFile[key] = nil
            fromState[key] = nil
        }
        #expect(NSDictionary(dictionary: fromFile) == NSDictionary(dictionary: fromState))

        let diff = try StatetoolRunner.run(["diff", "--semantic", "--json", a, b])
        #expect(diff.status == 1)
        let readings = try #require(try diff.jsonObject()["readings"] as? [String: [String: Any]])
        #expect(readings["a"]?["path"] as? String == "tail" && readings["b"]?["path"] as? String == "tail")
        #expect(readings["b"]?["resumedAt"] as? UInt64 == Fixtures.captures[3].sectionOffset)
        let walked = try StatetoolRunner.run(["diff", "--semantic", "--full-walk", a, b])
        let placed = try StatetoolRunner.run(["diff", "--semantic", a, b])
        #expect(walked.stdout == placed.stdout && !placed.stdout.isEmpty)
        let misuse = try StatetoolRunner.run(["diff", "--full-walk", a, b])
        #expect(misuse.status == 64)
        #expect(misuse.stderr.contains("--full-walk and -v are for migration files, which only --semantic reads."))
    }

    /// migration replace copies what lies before the device sections in the
    /// kernel without reading it (into a file or standard output); through a
    /// compressor every byte passes the process, and the input is walked.
    @Test func replaceCopiesTheUnreadRangeInTheKernel() throws {
        let file = try Fixtures.migrationFile("s1-A-running")
        let capture = Fixtures.captures[0]
        let output = path("same.mig")
        let replaced = try StatetoolRunner.run([
            "migration", "replace", file, "--state", Fixtures.state(capture.name), "-o", output, "--json", "-v",
        ])
        #expect(replaced.status == 0, "\(replaced.stderr)")
        #expect(try contents(output) == contents(file))
        let report = try replaced.jsonObject()
        let reading = try #require(report["reading"] as? [String: Any])
        #expect(reading["path"] as? String == "tail" && reading["resumedAt"] as? UInt64 == capture.sectionOffset)
        #expect((reading["bytesRead"] as? UInt64 ?? .max) < 1 << 20)
        // All but the state and the description (64135567, 45924 bytes), which are written anew.
        #expect(report["copiedInKernel"] as? UInt64 == capture.fileSize - (capture.streamEnd - capture.streamOffset) - 45924)
        #expect(replaced.stderr.hasPrefix("\(file): placed 3 device sections from the end"))

        // Standard output redirected to a file by the shell, as a user would (a pipe into the test would be slow to drain).
        let piped = try ProcessRunner.run("/bin/sh", [
            "-c", #""$0" migration replace "$1" --state "$2" -o - -v > "$3""#,
            StatetoolRunner.executable.path, file, Fixtures.state(capture.name), path("stdout.mig"),
        ])
        #expect(piped.status == 0)
        #expect(try contents(path("stdout.mig")) == contents(file))
        #expect(piped.stderr.contains("\(file): placed 3 device sections from the end, resumed at offset 63851239; read "))

        let compressed = try StatetoolRunner.run([
            "migration", "replace", file, "--state", Fixtures.state(capture.name), "-o", path("same.mig.zst"), "--zstd", "-v",
        ])
        #expect(compressed.status == 0, "\(compressed.stderr)")
        #expect(compressed.stderr.contains("\(file): walked front to back (every byte is copied through the process); read 64181491 bytes\n"))
    }
}
