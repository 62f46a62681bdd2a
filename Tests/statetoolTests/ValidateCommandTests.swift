import Foundation
import Testing

@Suite struct ValidateCommandTests {
    @Test(arguments: [
        ("missing-terminator.state",
         "error: missing-terminator at offset 9392: input ends where a chunk length or the zero-length terminator was due",
         "valid prefix: 9392 bytes, 3 complete chunks, 9380 payload bytes"),
        ("truncated-length.state",
         "error: truncated-length at offset 9392: input ends inside a 4-byte chunk length: 2 of 4 bytes present",
         "valid prefix: 9392 bytes, 3 complete chunks, 9380 payload bytes"),
        ("trailing-data.state",
         "error: trailing-data at offset 9396: 26 bytes follow the terminator",
         "valid prefix: 9396 bytes, 3 complete chunks, 9380 payload bytes"),
        ("compression-error.state.zst",
         "error: compression-error at compressed offset 0: checksum mismatch in the zstd frame starting at compressed offset 0",
         "valid prefix: 0 bytes, 0 complete chunks, 0 payload bytes"),
    ])
    func brokenSampleIsNamedWithOffsetAndPrefix(name: String, problem: String, prefix: String) throws {
        let path = "Samples/\(name)"
        let result = try StatetoolRunner.run(["validate", path])
        #expect(result.status == 1)
        #expect(result.stdout == "")
        #expect(result.stderr == "\(path): \(problem)\n\(path): \(prefix)\n")
    }

    @Test func truncatedChunkSampleReportsDeclaredAndPresentBytes() throws {
        let result = try StatetoolRunner.run(["validate", "Samples/truncated-chunk.state"])
        #expect(result.status == 1)
        #expect(result.stderr == """
            Samples/truncated-chunk.state: warning: oversized-chunk at offset 4100: chunk 1 declares 4294967280 bytes, above the 1048576-byte limit
            Samples/truncated-chunk.state: error: truncated-chunk at offset 4100: input ends inside chunk 1: 4294967280 bytes declared, 10 present, 4294967270 missing
            Samples/truncated-chunk.state: valid prefix: 4100 bytes, 1 complete chunk, 4096 payload bytes

            """)
    }

    @Test func validStreamsAreSilent() throws {
        let result = try StatetoolRunner.run(["validate", "Samples/good.state", "Samples/good.state.zst", "Samples/virtiofsd-s1-A.state"])
        #expect(result.status == 0)
        #expect(result.stdout == "")
        #expect(result.stderr == "")
    }

    @Test func verboseSaysOneLinePerValidStream() throws {
        let result = try StatetoolRunner.run(["validate", "-v", "Samples/good.state", "Samples/good.state.zst"])
        #expect(result.status == 0)
        #expect(result.stdout == """
            Samples/good.state: valid: 3 chunks, 9380 payload bytes, none
            Samples/good.state.zst: valid: 3 chunks, 9380 payload bytes, zstd

            """)
    }

    @Test func oversizedChunkIsAWarningUnlessStrict() throws {
        let path = "Samples/oversized-chunk.state.zst"
        let warning = "\(path): warning: oversized-chunk at offset 0: chunk 0 declares 2097152 bytes, above the 1048576-byte limit\n"
        let lenient = try StatetoolRunner.run(["validate", path])
        #expect(lenient.status == 0)
        #expect(lenient.stderr == warning)
        let strict = try StatetoolRunner.run(["validate", "--strict", path])
        #expect(strict.status == 1)
        #expect(strict.stderr == warning)
        let raised = try StatetoolRunner.run(["validate", "--strict", "--max-chunk", "2M", path])
        #expect(raised.status == 0)
        #expect(raised.stderr == "")
    }

    @Test func maxChunkTakesSuffixes() throws {
        let result = try StatetoolRunner.run(["validate", "--max-chunk", "4K", "Samples/virtiofsd-s1-A.state"])
        #expect(result.status == 0)
        #expect(result.stderr.split(separator: "\n").count == 4)
        #expect(result.stderr.hasPrefix("Samples/virtiofsd-s1-A.state: warning: oversized-chunk at offset 0: chunk 0 declares 65536 bytes, above the 4096-byte limit\n"))
    }

    @Test func standardInputThroughAPipe() throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: StatetoolRunner.sample("truncated-length.state")))
        let result = try StatetoolRunner.run(["validate", "-"], stdin: bytes)
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("-: error: truncated-length at offset 9392: "))
        let compressed = try Data(contentsOf: URL(fileURLWithPath: StatetoolRunner.sample("good.state.zst")))
        let valid = try StatetoolRunner.run(["validate", "-v", "-"], stdin: compressed)
        #expect(valid.status == 0)
        #expect(valid.stdout == "-: valid: 3 chunks, 9380 payload bytes, zstd\n")
    }

    @Test func emptyInputIsMissingTerminatorAtZero() throws {
        let result = try StatetoolRunner.run(["validate", "-"], stdin: Data())
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("-: error: missing-terminator at offset 0: "))
    }

    @Test func unreadableInputIsExitTwoAndWinsOverInvalid() throws {
        let result = try StatetoolRunner.run(["validate", "Samples/trailing-data.state", "/nonexistent/x.state"])
        #expect(result.status == 2)
        #expect(result.stderr.hasSuffix("/nonexistent/x.state: error: cannot open: No such file or directory\n"))
        let directory = try StatetoolRunner.run(["validate", "Samples"])
        #expect(directory.status == 2)
        #expect(directory.stderr == "Samples: error: read failed: Is a directory\n")
    }

    @Test func usageErrorsAreExit64() throws {
        #expect(try StatetoolRunner.run(["validate"]).status == 64)
        let zero = try StatetoolRunner.run(["validate", "--max-chunk", "0", "Samples/good.state"])
        #expect(zero.status == 64)
        #expect(zero.stderr.contains("--max-chunk must be between 1 byte and 4 GiB - 1."))
        #expect(try StatetoolRunner.run(["validate", "--max-chunk", "12Q", "Samples/good.state"]).status == 64)
    }
}
