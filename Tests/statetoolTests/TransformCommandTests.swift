import Foundation
import TestSupport
import Testing

/// payload, frame, rechunk, compress, decompress and repair, run as a user runs them.
@Suite final class TransformCommandTests {
    let scratch: ScratchDirectory

    init() throws {
        scratch = try ScratchDirectory("transform")
    }

    private func path(_ name: String) -> String { scratch.path(name) }
    private func contents(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }
    private var scratchFiles: [String] { scratch.contents }

    @Test func payloadThenFrameRoundTrips() throws {
        let payload = path("payload"), framed = path("framed.state")
        #expect(try StatetoolRunner.run(["payload", "Samples/good.state.zst", "-o", payload]).status == 0)
        let lines = String(decoding: try contents(payload), as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 140)
        let frame = try StatetoolRunner.run(["frame", "--chunk-size", "4K", payload, "-o", framed])
        #expect(frame.status == 0)
        #expect(frame.stdout == "" && frame.stderr == "")
        #expect(try contents(framed) == contents(StatetoolRunner.sample("good.state")))
    }

    @Test func payloadToStandardOutputAndFromStandardInput() throws {
        let stream = try contents(StatetoolRunner.sample("virtiofsd-s1-A.state"))
        let result = try StatetoolRunner.run(["payload", "-"], stdin: stream)
        #expect(result.status == 0)
        #expect(result.stdoutBytes.count == 238_452)
        #expect(result.stdoutBytes.first == 0x01)  // virtiofsd's PassthroughFs::V2 tag
    }

    @Test func payloadRefusesABrokenStreamAndLeavesNoFile() throws {
        let result = try StatetoolRunner.run(["payload", "Samples/trailing-data.state", "-o", path("p")])
        #expect(result.status == 1)
        #expect(result.stderr.hasSuffix("Samples/trailing-data.state: refusing a broken stream: --salvage writes the payload of its complete chunks\n"))
        #expect(scratchFiles.isEmpty)
    }

    @Test func payloadSalvageWritesCompleteChunksAndSaysWhatWasLeftOut() throws {
        let result = try StatetoolRunner.run(["payload", "--salvage", "Samples/truncated-chunk.state", "-o", path("p")])
        #expect(result.status == 0)
        #expect(result.stderr == "Samples/truncated-chunk.state: salvaged 4096 payload bytes from 1 complete chunk; left out from offset 4100: truncated-chunk at offset 4100: input ends inside chunk 1: 4294967280 bytes declared, 10 present, 4294967270 missing\n")
        #expect(try contents(path("p")).count == 4096)
    }

    @Test func rechunkKeepsThePayloadAndDiffAgrees() throws {
        let real = StatetoolRunner.sample("virtiofsd-s1-A.state"), rechunked = path("1000.state")
        #expect(try StatetoolRunner.run(["rechunk", "--chunk-size", "1000", real, "-o", rechunked]).status == 0)
        let inspect = try StatetoolRunner.run(["inspect", "--json", rechunked])
        let object = try inspect.jsonObject()
        #expect(object["chunks"] as? Int == 239)
        #expect(object["payloadSHA256"] as? String == "6fee85a91ea77fc233220eb9aeb758055dca68b6d17e667bc5572609f1f1584b")
        #expect(try StatetoolRunner.run(["diff", real, rechunked]).status == 0)
        let framing = try StatetoolRunner.run(["diff", "--framing", real, rechunked])
        #expect(framing.status == 1)
        #expect(framing.stdout.contains("first differing chunk: 0: a 65536 bytes at offset 0, b 1000 bytes at offset 0\n"))
    }

    @Test func rechunkRefusesABrokenStream() throws {
        let result = try StatetoolRunner.run(["rechunk", "--chunk-size", "1K", "Samples/missing-terminator.state", "-o", path("r")])
        #expect(result.status == 1)
        #expect(result.stderr.contains("refusing a broken stream: run statetool repair first"))
        #expect(scratchFiles.isEmpty)
    }

    @Test func compressThenDecompressReturnsTheExactInput() throws {
        let real = StatetoolRunner.sample("virtiofsd-s1-A.state")
        let compressed = path("a.zst"), restored = path("a.state")
        #expect(try StatetoolRunner.run(["compress", "--level", "9", "--threads", "2", real, "-o", compressed]).status == 0)
        #expect(try contents(compressed).prefix(4) == Data([0x28, 0xB5, 0x2F, 0xFD]))
        #expect(try StatetoolRunner.run(["decompress", compressed, "-o", restored]).status == 0)
        #expect(try contents(restored) == contents(real))
    }

    @Test func compressRefusesBrokenInputUnlessForced() throws {
        let broken = StatetoolRunner.sample("trailing-data.state")
        #expect(try StatetoolRunner.run(["compress", broken, "-o", path("x.zst")]).status == 1)
        #expect(scratchFiles.isEmpty)
        let forced = try StatetoolRunner.run(["compress", "--force", broken, "-o", path("x.zst")])
        #expect(forced.status == 0)
        #expect(forced.stderr.contains("error: trailing-data at offset 9396"))
        #expect(try StatetoolRunner.run(["decompress", "--force", path("x.zst"), "-o", path("x")]).status == 0)
        #expect(try contents(path("x")) == contents(broken))
    }

    @Test func frameAndRepairWriteZstdDirectly() throws {
        #expect(try StatetoolRunner.run(["frame", "--zstd", "--chunk-size", "64K", "Samples/good.state", "-o", path("f.zst")]).status == 0)
        let check = try StatetoolRunner.run(["validate", "-v", path("f.zst")])
        #expect(check.stdout == "\(path("f.zst")): valid: 1 chunks, 9396 payload bytes, zstd\n")
        #expect(try StatetoolRunner.run(["repair", "--zstd", "Samples/missing-terminator.state", "-o", path("r.zst")]).status == 0)
        #expect(try StatetoolRunner.run(["validate", path("r.zst")]).status == 0)
    }

    @Test func refusesToWriteOverItsInput() throws {
        let input = path("in.state")
        try contents(StatetoolRunner.sample("good.state")).write(to: URL(fileURLWithPath: input))
        let result = try StatetoolRunner.run(["rechunk", "--chunk-size", "1K", input, "-o", input])
        #expect(result.status == 2)
        #expect(result.stderr == "error: refusing to write over the input file \(input)\n")
        #expect(try contents(input) == contents(StatetoolRunner.sample("good.state")))
    }

    @Test func killedMidWayLeavesNoOutput() throws {
        // frame reads a pipe that never ends; kill it once output is under way.
        let input = Pipe()
        let process = try ProcessRunner.start(StatetoolRunner.executable.path, ["frame", "-", "-o", path("out.state")], log: nil, stdin: input)
        try input.fileHandleForWriting.write(contentsOf: Data(repeating: 7, count: 4 << 20))
        Thread.sleep(forTimeInterval: 0.3)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)
        #expect(scratchFiles.isEmpty)
    }

    @Test func binaryIsNotWrittenToAMissingFolder() throws {
        let result = try StatetoolRunner.run(["payload", "Samples/good.state", "-o", "/nonexistent-dir/p"])
        #expect(result.status == 2)
        #expect(result.stderr == "error: cannot create /nonexistent-dir/p: No such file or directory\n")
    }
}

@Suite struct RepairCommandTests {
    let scratch: ScratchDirectory

    init() throws {
        scratch = try ScratchDirectory("repair")
    }

    private func path(_ name: String) -> String { scratch.path(name) }

    @Test(arguments: [
        ("missing-terminator.state", ["added the terminator at output offset 9392"], "3 chunks, 9380 payload bytes, 9396 bytes; 0 input bytes left out"),
        ("truncated-length.state", ["dropped the 2-byte partial length field at offset 9392", "added the terminator at output offset 9392"],
         "3 chunks, 9380 payload bytes, 9396 bytes; 2 input bytes left out"),
        ("trailing-data.state", ["dropped 26 bytes of trailing data at offset 9396"], "3 chunks, 9380 payload bytes, 9396 bytes; 26 input bytes left out"),
        ("truncated-chunk.state",
         ["dropped truncated chunk 1 at offset 4100: its length field (declaring 4294967280 bytes) and the 10 bytes present, 14 bytes in all",
          "added the terminator at output offset 4100"],
         "1 chunk, 4096 payload bytes, 4104 bytes; 14 input bytes left out"),
    ])
    func repairSaysExactlyWhatChanged(sample: String, changes: [String], summary: String) throws {
        let output = path("repaired.state")
        let result = try StatetoolRunner.run(["repair", "Samples/\(sample)", "-o", output])
        #expect(result.status == 0)
        #expect(result.stdout == (["Samples/\(sample): repaired into \(output):"] + changes.map { "  " + $0 } + ["  wrote " + summary]).joined(separator: "\n") + "\n")
        #expect(try StatetoolRunner.run(["validate", "--strict", output]).status == 0)
        if sample != "truncated-chunk.state" {
            #expect(try Data(contentsOf: URL(fileURLWithPath: output)) == Data(contentsOf: URL(fileURLWithPath: StatetoolRunner.sample("good.state"))))
        }
    }

    @Test func validInputIsCopiedByteForByte() throws {
        let real = try Data(contentsOf: URL(fileURLWithPath: StatetoolRunner.sample("virtiofsd-s1-A.state")))
        let result = try StatetoolRunner.run(["repair", "-", "-o", "-"], stdin: real)
        #expect(result.status == 0)
        #expect(result.stdoutBytes == real)
        #expect(result.stderr == "-: valid, copied unchanged: 4 chunks, 238452 payload bytes, 238472 bytes\n")
    }

    @Test func jsonReportAndKeepPartial() throws {
        let output = path("repaired.state")
        let result = try StatetoolRunner.run(["repair", "--keep-partial", "--json", "Samples/truncated-chunk.state", "-o", output])
        #expect(result.status == 0)
        let object = try result.jsonObject()
        let changes = try #require(object["changes"] as? [[String: Any]])
        #expect(changes.map { $0["kind"] as? String } == ["kept-partial-chunk", "added-terminator"])
        #expect(changes.map { $0["offset"] as? Int } == [4100, nil])
        #expect(changes.map { $0["outputOffset"] as? Int } == [nil, 4114])
        #expect(changes.map { $0["severity"] as? String } == ["note", "note"])
        #expect(object["outputChunks"] as? Int == 2)
        #expect(object["outputPayloadBytes"] as? Int == 4106)
        #expect(object["outputBytes"] as? Int == 4118)
        #expect(try Data(contentsOf: URL(fileURLWithPath: output)).count == 4118)
    }

    @Test func truncatedChunkLongerThanOneMebibyteIsMendedInAFile() throws {
        // 4 MiB declared, 1.5 MiB present: written as read, then the length field is rewritten.
        var stream = Data([0, 0, 0, 3, 1, 2, 3, 0, 0x40, 0, 0])
        stream.append(Data(repeating: 9, count: 3 << 19))
        let kept = path("kept"), dropped = path("dropped")
        #expect(try StatetoolRunner.run(["repair", "--keep-partial", "-", "-o", kept], stdin: stream).status == 0)
        #expect(try StatetoolRunner.run(["repair", "-", "-o", dropped], stdin: stream).status == 0)
        var expectedKept = Data([0, 0, 0, 3, 1, 2, 3, 0, 0x18, 0, 0])
        expectedKept.append(Data(repeating: 9, count: 3 << 19))
        expectedKept.append(Data([0, 0, 0, 0]))
        #expect(try Data(contentsOf: URL(fileURLWithPath: kept)) == expectedKept)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dropped)) == Data([0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 0]))
        let piped = try StatetoolRunner.run(["repair", "-", "-o", "-"], stdin: stream)
        #expect(piped.status == 2)
        #expect(piped.stderr == "error: bytes already written to a pipe cannot be taken back (use -o FILE)\n")
    }
}
