import Foundation
import Testing

@Suite struct DiffCommandTests {
    let state = Fixtures.state

    @Test func identicalCapturesExitZero() throws {
        let result = try StatetoolRunner.run(["diff", state("s1-A-running"), state("s1-E-resaved-on-dst")])
        #expect(result.status == 0)
        #expect(result.stdout.hasSuffix("payloads are identical\n  a: 238452 payload bytes in 4 chunks (none)\n  b: 238452 payload bytes in 4 chunks (none)\n"))
    }

    @Test func realDifferenceIsReportedAtTheManifestsOffsets() throws {
        let result = try StatetoolRunner.run(["diff", "--json", "--max-ranges", "100", state("s1-B-stopped-nochange"), state("s1-C-relookup")])
        #expect(result.status == 1)
        let object = try result.jsonObject()
        #expect(object["identical"] as? Bool == false)
        #expect(object["differingBytes"] as? Int == 22)
        let ranges = try #require(object["ranges"] as? [[String: Int]])
        #expect(ranges.map { $0["start"] } == [8, 18, 27, 36, 45, 54, 63, 72, 81, 90, 99, 108, 117, 126, 135, 144, 153, 162, 171, 180, 189, 238_445])
        let first = try #require(object["firstDifference"] as? [String: Any])
        #expect(first["payloadOffset"] as? Int == 8)
        #expect(first["a"] as? [String: Int] == ["chunk": 0, "fileOffset": 12])
        let context = try #require(object["context"] as? [String: Any])
        #expect(context["offset"] as? Int == 0)
        #expect((context["a"] as? String)?.hasPrefix("17 ") == true)
        #expect((context["b"] as? String)?.hasPrefix("18 ") == true)
    }

    @Test func textReportShowsTheFirstDifferenceAndHexView() throws {
        let result = try StatetoolRunner.run(["diff", "--max-ranges", "2", "--context", "8", state("s1-B-stopped-nochange"), state("s1-C-relookup")])
        #expect(result.status == 1)
        #expect(result.stdout.contains("""
            first difference at payload offset 8: a chunk 0 at file offset 12, b chunk 0 at file offset 12
            22 differing ranges, 22 bytes:
              8..<9 (1 byte)
              18..<19 (1 byte)
              ... and 20 more (--max-ranges)
            context (payload offsets):
              =           0  01 e6 28 01 03 00 00 02
              a           8  17 01 01 04 74 72 65 65
              b           8  18 01 01 04 74 72 65 65
                             ^^
            """))
    }

    @Test func lengthDifferenceAndRawAgainstZstd() throws {
        let result = try StatetoolRunner.run(["diff", "--json", state("s1-C-relookup"), state("s1-D-more-open")])
        #expect(result.status == 1)
        let object = try result.jsonObject()
        #expect((object["a"] as? [String: Any])?["payloadBytes"] as? Int == 238_452)
        #expect((object["b"] as? [String: Any])?["payloadBytes"] as? Int == 238_624)
        #expect((object["ranges"] as? [[String: Int]])?.last?["end"] == 238_624)
        let mixed = try StatetoolRunner.run(["diff", "Samples/good.state", "Samples/good.state.zst"])
        #expect(mixed.status == 0)
    }

    @Test func brokenInputIsTroubleNamedWithItsProblem() throws {
        let result = try StatetoolRunner.run(["diff", "Samples/good.state", "Samples/truncated-length.state"])
        #expect(result.status == 2)
        #expect(result.stdout == "")
        #expect(result.stderr.hasPrefix("Samples/truncated-length.state: error: truncated-length at offset 9392"))
        #expect(try StatetoolRunner.run(["diff", "-", "-"]).status == 64)
        #expect(try StatetoolRunner.run(["diff", "Samples/good.state", "/nonexistent"]).status == 2)
    }
}
