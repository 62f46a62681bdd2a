import Foundation
import TestSupport
import Testing

@Suite final class MigrationCommandTests {
    let scratch: ScratchDirectory

    init() throws {
        scratch = try ScratchDirectory("migration")
    }

    private func path(_ name: String) -> String { scratch.path(name) }

    /// Every capture QEMU wrote: extract reproduces the fixture's stream byte
    /// for byte, at the offsets MANIFEST.md gives.
    @Test(arguments: Fixtures.captures)
    func extractReproducesTheRealStreams(capture: Fixtures.Capture) throws {
        let file = try Fixtures.migrationFile(capture.name)
        let output = path("\(capture.name).state")
        let result = try StatetoolRunner.run(["extract", file, "-o", output, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: output)) == Data(contentsOf: URL(fileURLWithPath: Fixtures.state(capture.name))))
        let report = try result.jsonObject()
        let states = try #require(report["backEndStates"] as? [[String: Any]])
        try #require(states.count == 1)
        #expect(states[0]["device"] as? String == "0000:00:01.0/vhost-user-fs")
        #expect(states[0]["section"] as? Int == 38)
        #expect(states[0]["headerOffset"] as? UInt64 == capture.headerOffset)
        #expect(states[0]["streamOffset"] as? UInt64 == capture.streamOffset)
        #expect(states[0]["streamLength"] as? UInt64 == capture.streamEnd - capture.streamOffset)
        #expect(states[0]["describedLength"] as? UInt64 == capture.streamEnd - capture.streamOffset)
        #expect(states[0]["chunks"] as? Int == capture.chunks)
        #expect(states[0]["payloadBytes"] as? UInt64 == capture.payloadBytes)
        #expect(states[0]["output"] as? String == output)
        let sections = try #require(report["sections"] as? [[String: Any]])
        let device = try #require(sections.first { $0["backEndState"] as? Bool == true })
        #expect(device["offset"] as? UInt64 == capture.sectionOffset)
        #expect(device["byteCount"] as? UInt64 == capture.streamEnd + 5 - capture.sectionOffset)
        #expect(report["problems"] as? [Any] == nil || (report["problems"] as? [Any])?.isEmpty == true)
    }

    @Test func migrationListShowsEverySectionOfARealFile() throws {
        let result = try StatetoolRunner.run(["migration", "ls", Fixtures.compressedMigrationFile])
        #expect(result.status == 0, "\(result.stderr)")
        // The vhost-user-fs queues are larger than QEMU's default queue-size: a warning each, at its size's offset.
        #expect(result.stderr == [63_851_662, 63_851_678].enumerated().map { queue, offset in
            "\(Fixtures.compressedMigrationFile): warning: virtqueue-size at offset \(offset): virtqueue \(queue) has 1024 entries, more than QEMU's default queue-size 128: QEMU 11.1 refuses it (VQ \(queue) vring.num 1024 exceeds allocated max 128)\n"
        }.joined())
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "\(Fixtures.compressedMigrationFile): QEMU migration file (zstd), machine pc-q35-10.0, page size 4096")
        #expect(lines.contains { $0.hasPrefix("      1  START  ram ") && $0.hasSuffix("            24      63818735        7") })
        #expect(lines.contains {
            $0 == "     38  FULL   0000:00:01.0/vhost-user-fs                   0        0      63851239        284163        1  back-end state"
        })
        #expect(lines.contains("RAM block mem: 268435456 bytes (256.0 MiB), page size 4096, listed at offset 49"))
        #expect(lines.contains("RAM block /rom@etc/acpi/rsdp: 4096 bytes (4.0 KiB), page size 4096, listed at offset 151"))
        #expect(lines.contains("EOF marker at offset 64135566"))
        #expect(lines.contains("JSON description at offset 64135567, 45924 bytes, 31 devices"))
        #expect(lines.suffix(2) == [
            "back-end state of 0000:00:01.0/vhost-user-fs (section 38, instance 0): vhost-user-fs-backend header at offset 63896898, stream at offset 63896925..64135397, 238472 bytes, 4 chunks, 238452 payload bytes, valid, JSON description says 238472 bytes (matches)",
            // The registered back-ends name what the state holds.
            "  virtiofsd: state V2: 5222 inodes (root 1, path 5221), 200 open handles",
        ])
    }

    /// `--queue-size` is one option of `migration ls` and `migration show`: 0 is no queue size for either.
    @Test(arguments: ["ls", "show"])
    func aQueueSizeOfZeroIsAUsageError(command: String) throws {
        let result = try StatetoolRunner.run(["migration", command, "--queue-size", "0", Fixtures.compressedMigrationFile])
        #expect(result.status == 64)
        #expect(result.stderr.hasPrefix("Error: --queue-size must be at least 1.\n"), "\(result.stderr)")
    }

    @Test func extractReadsACompressedFileFromStandardInput() throws {
        let compressed = try Data(contentsOf: URL(fileURLWithPath: Fixtures.compressedMigrationFile))
        let result = try StatetoolRunner.run(["extract", "-", "-o", "-", "--payload"], stdin: compressed)
        #expect(result.status == 0, "\(result.stderr)")
        let framed = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.state("s1-A-running"))))
        var payload: [UInt8] = []
        var position = 0
        while true {
            let length = framed[position..<position + 4].reduce(0) { $0 << 8 | Int($1) }
            position += 4
            if length == 0 { break }
            payload += framed[position..<position + length]
            position += length
        }
        #expect(Array(result.stdoutBytes) == payload)
        #expect(result.stderr.hasPrefix("back-end state of 0000:00:01.0/vhost-user-fs (section 38, instance 0)"))
    }

    /// Cuts and damage in a real file: each gives its problem at its offset, and no output.
    @Test func damagedRealFilesReportTheExactProblem() throws {
        let whole = try Data(contentsOf: URL(fileURLWithPath: try Fixtures.migrationFile("s1-A-running")))
        let capture = Fixtures.captures[0]
        let cases: [(name: String, bytes: Data, status: Int32, message: String)] = [
            ("in RAM", whole.prefix(10_000_000), 1, "error: truncated-file at offset 10000000: file ends inside RAM section 1"),
            ("in the device section", whole.prefix(Int(capture.sectionOffset) + 100), 1,
             "error: truncated-file at offset \(capture.sectionOffset + 100): file ends inside section 38 (0000:00:01.0/vhost-user-fs), before its footer"),
            ("in the stream", whole.prefix(Int(capture.streamOffset) + 70_000), 1,
             "error: state-stream at offset \(capture.streamOffset + 65540): 0000:00:01.0/vhost-user-fs: truncated-chunk at stream offset 65540: input ends inside chunk 1: 65536 bytes declared, 4456 present, 61080 missing"),
            ("in the JSON", whole.prefix(64_135_567 + 1000), 1, "error: truncated-file at offset 64136567: file ends inside the JSON description"),
            ("bad footer", { var bytes = whole; bytes[Int(capture.streamEnd) + 4] = 0x27; return bytes }(), 1,
             "error: bad-footer at offset \(capture.streamEnd): section footer 7e + be32 38 expected"),
        ]
        for damage in cases {
            let file = path("damaged.mig")
            try damage.bytes.write(to: URL(fileURLWithPath: file))
            let output = path("damaged.state")
            let result = try StatetoolRunner.run(["extract", file, "-o", output])
            #expect(result.status == damage.status, "\(damage.name)")
            #expect(result.stderr.contains("\(file): \(damage.message)\n"), "\(damage.name): \(result.stderr)")
            let stateComplete = damage.name != "in the stream" && damage.name != "in RAM" && damage.name != "in the device section"
            #expect(FileManager.default.fileExists(atPath: output) == stateComplete, "\(damage.name)")
            try? FileManager.default.removeItem(atPath: output)
        }
    }

    @Test func withoutItsDescriptionAFileStillYieldsItsStateWithAWarning() throws {
        let whole = try Data(contentsOf: URL(fileURLWithPath: try Fixtures.migrationFile("s1-A-running")))
        let file = path("no-json.mig")
        try whole.prefix(64_135_567).write(to: URL(fileURLWithPath: file))
        let output = path("no-json.state")
        let result = try StatetoolRunner.run(["extract", file, "-o", output])
        #expect(result.status == 0)
        #expect(result.stderr == "\(file): warning: no-description at offset 64135567: no JSON description after the EOF marker (cut off, or written with suppress-vmdesc): sizes not cross-checked\n")
        #expect(try Data(contentsOf: URL(fileURLWithPath: output)) == Data(contentsOf: URL(fileURLWithPath: Fixtures.state("s1-A-running"))))
    }

    @Test func salvageKeepsTheCompleteChunksOfACutStream() throws {
        let whole = try Data(contentsOf: URL(fileURLWithPath: try Fixtures.migrationFile("s1-A-running")))
        let capture = Fixtures.captures[0]
        let file = path("cut.mig")
        try whole.prefix(Int(capture.streamOffset) + 70_000).write(to: URL(fileURLWithPath: file))
        let output = path("cut.state")
        let result = try StatetoolRunner.run(["extract", file, "-o", output, "--salvage"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("\(file): 0000:00:01.0/vhost-user-fs: salvaged 1 complete chunks (65540 bytes) into \(output), without a terminator\n"))
        let salvaged = try Data(contentsOf: URL(fileURLWithPath: output))
        #expect(salvaged == whole[Int(capture.streamOffset)..<Int(capture.streamOffset) + 65540])
    }

    @Test func eachDeviceGoesToItsOwnFileOrOneIsPicked() throws {
        let sample = StatetoolRunner.sample("two-devices.mig")
        let both = try StatetoolRunner.run(["extract", sample, "--directory", scratch.url.path])
        #expect(both.status == 0, "\(both.stderr)")
        let fs = try Data(contentsOf: scratch.url("0000:00:04.0_vhost-user-fs.state"))
        #expect(fs == (try Data(contentsOf: URL(fileURLWithPath: StatetoolRunner.sample("good.state")))))
        let net = try Data(contentsOf: scratch.url("0000:00:03.0_virtio-net.state"))
        #expect(Array(net) == [0, 0, 0, 30] + Array("vhost-user net back-end state\n".utf8) + [0, 0, 0, 0])

        let refused = try StatetoolRunner.run(["extract", sample, "-o", path("one.state")])
        #expect(refused.status == 64)
        #expect(refused.stderr.contains("error: several devices hold back-end state (0000:00:04.0/vhost-user-fs, 0000:00:03.0/virtio-net): pick one with --device"))
        #expect(!FileManager.default.fileExists(atPath: path("one.state")))

        let picked = try StatetoolRunner.run(["extract", sample, "-o", path("one.state"), "--device", "3", "--payload"])
        #expect(picked.status == 0, "\(picked.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path("one.state"))) == Data("vhost-user net back-end state\n".utf8))

        let missing = try StatetoolRunner.run(["extract", sample, "-o", path("none.state"), "--device", "nic9"])
        #expect(missing.status == 1)
        #expect(missing.stderr.hasSuffix("error: no back-end state of device nic9\n"))
    }

    /// `migration ls --queue-size`: a destination with 128-entry queues
    /// refuses the real file (exit status 1), one with 1024 takes it.
    @Test func migrationListChecksTheQueueSize() throws {
        let refused = try StatetoolRunner.run(["migration", "ls", "--queue-size", "128", "--json", Fixtures.compressedMigrationFile])
        #expect(refused.status == 1)
        let report = try refused.jsonObject()
        #expect(report["valid"] as? Bool == false)
        let findings = try #require(report["virtioFindings"] as? [[String: Any]])
        #expect(findings.map { $0["kind"] as? String } == ["virtqueue-size", "virtqueue-size"])
        #expect(findings.map { $0["severity"] as? String } == ["error", "error"])
        #expect(findings.map { $0["offset"] as? UInt64 } == [63_851_662, 63_851_678])
        let taken = try StatetoolRunner.run(["migration", "ls", "--queue-size", "1024", Fixtures.compressedMigrationFile])
        #expect(taken.status == 0)
        #expect(taken.stderr == "")
    }

    /// A state stream given to `migration ls` or `extract`: said to be no
    /// migration file, with where a stream is read; nothing on standard output
    /// that would call it one, no output file.
    @Test func notAMigrationFileIsSaidSo() throws {
        let stream = StatetoolRunner.sample("good.state")
        let said = """
            \(stream): error: not-a-migration-file at offset 0: no QEVM magic: not a QEMU migration file
            \(stream): note: if it is a state stream (what extract writes), validate, inspect and the other stream commands read it

            """
        for command in [["migration", "ls"], ["extract", "-o", path("out.state")]] {
            let result = try StatetoolRunner.run(command + [stream])
            #expect(result.status == 1, "\(command)")
            #expect(result.stdout.isEmpty, "\(command): \(result.stdout)")
            #expect(result.stderr == said, "\(command)")
        }
        #expect(scratch.contents.isEmpty)
        let json = try StatetoolRunner.run(["migration", "ls", "--json", stream])
        #expect(json.status == 1)
        let problems = try #require(try json.jsonObject()["problems"] as? [[String: Any]])
        #expect(problems.map { $0["kind"] as? String } == ["not-a-migration-file"])
    }
}
