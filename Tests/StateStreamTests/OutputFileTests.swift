import Foundation
import StateStream
import TestSupport
import Testing

@Suite struct OutputFileTests {
    let scratch: ScratchDirectory
    private var directory: URL { scratch.url }

    init() throws {
        scratch = try ScratchDirectory("output")
    }

    @Test func fileAppearsOnlyOnCommit() throws {
        let path = directory.appendingPathComponent("out.state").path
        let output = try OutputFile(path: path, protecting: [])
        try output.write([1, 2, 3])
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
        try output.commit()
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["out.state"])
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data([1, 2, 3]))
    }

    @Test func uncommittedOutputLeavesNothing() throws {
        do {
            let output = try OutputFile(path: directory.appendingPathComponent("out.state").path, protecting: [])
            try output.write([1, 2, 3])
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }

    @Test func commitReplacesAnExistingFile() throws {
        let url = directory.appendingPathComponent("out.state")
        try Data([9, 9, 9, 9]).write(to: url)
        let output = try OutputFile(path: url.path, protecting: [])
        try output.write([1])
        #expect(try Data(contentsOf: url) == Data([9, 9, 9, 9]))
        try output.commit()
        #expect(try Data(contentsOf: url) == Data([1]))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["out.state"])
    }

    @Test func inputIsNeverOverwritten() throws {
        let url = directory.appendingPathComponent("in.state")
        try Data([1]).write(to: url)
        let link = directory.appendingPathComponent("link.state")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: url)
        #expect(throws: OutputError.wouldOverwriteInput(path: url.path)) {
            _ = try OutputFile(path: url.path, protecting: [url.path])
        }
        #expect(throws: OutputError.wouldOverwriteInput(path: link.path)) {
            _ = try OutputFile(path: link.path, protecting: [url.path])
        }
    }

    @Test func truncateAndOverwriteRewriteATemporaryFile() throws {
        let url = directory.appendingPathComponent("out.state")
        let output = try OutputFile(path: url.path, protecting: [])
        #expect(output.isRewindable)
        try output.write([1, 2, 3, 4, 5, 6])
        try output.truncate(to: 4)
        try output.overwrite(at: 0, with: [7])
        try output.write([8])
        try output.commit()
        #expect(try Data(contentsOf: url) == Data([7, 2, 3, 4, 8]))
        #expect(output.bytesWritten == 5)
    }

    @Test func deviceIsWrittenDirectlyAndCannotRewind() throws {
        let output = try OutputFile(path: "/dev/null", protecting: [])
        try output.write([1, 2])
        #expect(!output.isRewindable)
        #expect(throws: OutputError.cannotRewind) { try output.truncate(to: 0) }
        try output.commit()
    }

    @Test func missingFolderCannotBeCreated() {
        #expect(throws: OutputError.cannotCreate(path: "/nonexistent-dir/x.state", .noSuchFileOrDirectory)) {
            _ = try OutputFile(path: "/nonexistent-dir/x.state", protecting: [])
        }
    }
}
