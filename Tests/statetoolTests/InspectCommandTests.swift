import Foundation
import Testing

@Suite struct InspectCommandTests {
    @Test func realStateSummary() throws {
        let result = try StatetoolRunner.run(["inspect", "Samples/virtiofsd-s1-A.state"])
        #expect(result.status == 0)
        #expect(result.stderr == "")
        #expect(result.stdout == """
            file            Samples/virtiofsd-s1-A.state
            compression     none
            valid           yes
            chunks          4
            payload         238452 bytes (232.9 KiB)
            framed          238472 bytes, framing overhead 20 bytes
            chunk sizes     min 41844, median 65536, max 65536
            terminator      at offset 238468
            payload sha256  6fee85a91ea77fc233220eb9aeb758055dca68b6d17e667bc5572609f1f1584b
            virtiofsd       state V2: 5222 inodes (root 1, path 5221), 200 open handles
            next ids        inode 5399, handle 1084
            options         announce_submounts
            mount paths     none
            problems        none
            chunk size histogram
              32769 - 65536         4         ########################################

            """)
    }

    @Test func brokenStreamSummaryListsProblemsAndExitsOne() throws {
        let result = try StatetoolRunner.run(["inspect", "Samples/trailing-data.state"])
        #expect(result.status == 1)
        #expect(result.stdout.contains("valid           no\n"))
        #expect(result.stdout.contains("terminator      at offset 9392\n"))
        #expect(result.stdout.contains("valid prefix    9396 bytes\n"))
        #expect(result.stdout.contains("  error: trailing-data at offset 9396: 26 bytes follow the terminator\n"))
    }

    @Test func jsonHasEveryField() throws {
        let result = try StatetoolRunner.run(["inspect", "--json", "Samples/good.state.zst"])
        #expect(result.status == 0)
        let object = try result.jsonObject()
        #expect(object["file"] as? String == "Samples/good.state.zst")
        #expect(object["compression"] as? String == "zstd")
        #expect(object["valid"] as? Bool == true)
        #expect(object["chunks"] as? Int == 3)
        #expect(object["payloadBytes"] as? Int == 9380)
        #expect(object["framedBytes"] as? Int == 9396)
        #expect(object["compressedBytes"] as? Int == 350)
        #expect(object["framingOverhead"] as? Int == 16)
        #expect(object["terminatorOffset"] as? Int == 9392)
        #expect(object["payloadSHA256"] as? String == "0ea9969a5235f5ba82b5d4f6548a7a2fee7be55f6a81741fb643fafc28e5447f")
        let sizes = try #require(object["chunkSizes"] as? [String: Int])
        #expect(sizes == ["min": 1188, "median": 4096, "max": 4096])
        #expect((object["problems"] as? [Any])?.isEmpty == true)
        #expect(object["chunkList"] == nil)
    }

    @Test func jsonOfBrokenStreamHasNullTerminatorAndProblems() throws {
        let result = try StatetoolRunner.run(["inspect", "--json", "Samples/truncated-length.state"])
        #expect(result.status == 1)
        let object = try result.jsonObject()
        #expect(object["valid"] as? Bool == false)
        #expect(object["terminatorOffset"] is NSNull)
        let problems = try #require(object["problems"] as? [[String: Any]])
        #expect(problems.count == 1)
        #expect(problems[0]["kind"] as? String == "truncated-length")
        #expect(problems[0]["severity"] as? String == "error")
        #expect(problems[0]["offset"] as? Int == 9392)
        #expect(problems[0]["message"] as? String == "input ends inside a 4-byte chunk length: 2 of 4 bytes present")
        let prefix = try #require(object["validPrefix"] as? [String: Int])
        #expect(prefix == ["bytes": 9392, "chunks": 3, "payloadBytes": 9380])
    }

    @Test func jsonCompressionErrorSaysItsOffsetIsCompressed() throws {
        let result = try StatetoolRunner.run(["inspect", "--json", "Samples/compression-error.state.zst"])
        #expect(result.status == 1)
        let object = try result.jsonObject()
        let problem = try #require((object["problems"] as? [[String: Any]])?.first)
        #expect(problem["kind"] as? String == "compression-error")
        #expect(problem["offset"] as? Int == 0)
        #expect(problem["offsetIsCompressed"] as? Bool == true)
        #expect(problem["compressedOffset"] == nil)
    }

    @Test func chunkListInJson() throws {
        let result = try StatetoolRunner.run(["inspect", "--json", "--chunks", "Samples/virtiofsd-s1-A.state"])
        #expect(result.status == 0)
        let object = try result.jsonObject()
        let list = try #require(object["chunkList"] as? [[String: Int]])
        #expect(list == [
            ["index": 0, "offset": 0, "length": 65536],
            ["index": 1, "offset": 65540, "length": 65536],
            ["index": 2, "offset": 131080, "length": 65536],
            ["index": 3, "offset": 196620, "length": 41844],
        ])
        #expect(object["chunks"] as? Int == 4)
    }

    @Test func chunkListInText() throws {
        let result = try StatetoolRunner.run(["inspect", "--chunks", "Samples/good.state"])
        #expect(result.status == 0)
        #expect(result.stdout.hasPrefix("""
            chunk        offset      length
                0             0        4096
                1          4100        4096
                2          8200        1188

            file            Samples/good.state

            """))
    }

    @Test func standardInputThroughAPipe() throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: StatetoolRunner.sample("virtiofsd-s1-A.state")))
        let result = try StatetoolRunner.run(["inspect", "--json", "-"], stdin: bytes)
        #expect(result.status == 0)
        let object = try result.jsonObject()
        #expect(object["file"] as? String == "-")
        #expect(object["payloadSHA256"] as? String == "6fee85a91ea77fc233220eb9aeb758055dca68b6d17e667bc5572609f1f1584b")
    }

    @Test func missingFileIsExitTwo() throws {
        let result = try StatetoolRunner.run(["inspect", "/nonexistent/x.state"])
        #expect(result.status == 2)
        #expect(result.stdout == "")
        #expect(result.stderr == "/nonexistent/x.state: error: cannot open: No such file or directory\n")
    }
}
