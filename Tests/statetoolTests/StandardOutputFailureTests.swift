import Foundation
import TestSupport
import Testing

/// Every command that prints, with its standard output on `/dev/full` (every
/// write fails with `ENOSPC`) and on a pipe whose reader has gone (`EPIPE`):
/// a full output is status 2 and a message, never a silent success; a reader
/// that went away ends the command quietly with status 141.
@Suite(.serialized) final class StandardOutputFailureTests {
    let scratch: ScratchDirectory

    init() throws {
        scratch = try ScratchDirectory("stdout-failure")
        try FileManager.default.createDirectory(atPath: scratch.path("share"), withIntermediateDirectories: true)
    }

    static let state = "Samples/virtiofsd-s1-A.state"
    static let migrationFile = "Samples/two-devices.mig"
    static let full = "statetool: error: cannot write standard output: No space left on device\n"

    /// The commands that print on standard output, each as a user runs it.
    /// `OUT` stands for a fresh output path in the scratch folder, `SHARE` for
    /// an empty shared directory.
    static let commands: [[String]] = [
        ["validate", "-v", "Samples/good.state"],
        ["inspect", "Samples/good.state"],
        ["inspect", "--json", state],
        ["inspect", "--chunks", state],
        ["inspect", "--decode", state],
        ["inspect", "--json", "--chunks", "--decode", state],
        ["diff", "Samples/good.state", state],
        ["diff", "--json", "Samples/good.state", state],
        ["diff", "--semantic", state, state],
        ["diff", "--semantic", "--json", state, state],
        ["payload", state, "-o", "-"],
        ["frame", state, "-o", "-"],
        ["rechunk", "--chunk-size", "4096", state, "-o", "-"],
        ["compress", state, "-o", "-"],
        ["decompress", "Samples/good.state.zst", "-o", "-"],
        ["repair", "Samples/truncated-chunk.state", "-o", "OUT"],
        ["repair", "--json", "Samples/truncated-chunk.state", "-o", "OUT"],
        ["migration", "ls", migrationFile],
        ["migration", "ls", "--json", migrationFile],
        ["migration", "replace", "--device", "0000:00:04.0/vhost-user-fs", "--state", state, migrationFile, "-o", "OUT"],
        ["migration", "replace", "--json", "--device", "0000:00:04.0/vhost-user-fs", "--state", state, migrationFile, "-o", "OUT"],
        ["extract", migrationFile, "--device", "0000:00:04.0/vhost-user-fs", "-o", "-"],
        ["extract", "--json", migrationFile, "--directory", "DIR"],
        ["preflight", "--shared-dir", "SHARE", state],
        ["preflight", "--json", "--shared-dir", "SHARE", state],
        ["retarget", "--drop-missing", "--shared-dir", "SHARE", state, "-o", "OUT"],
        ["retarget", "--json", "--drop-missing", "--shared-dir", "SHARE", state, "-o", "OUT"],
        ["diagnose", "--shared-dir", "SHARE", state],
        ["diagnose", "--json", "--shared-dir", "SHARE", state],
        ["schema", "inspect"],
        ["schema", "--list"],
        ["--version"],
        ["--help"],
        ["help", "inspect"],
    ]

    private var outputs = 0

    /// `arguments` with `OUT`, `DIR` (an empty folder) and `SHARE` made real.
    private func resolve(_ arguments: [String]) throws -> [String] {
        outputs += 1
        let output = scratch.path("out-\(outputs)")
        if arguments.contains("DIR") { try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true) }
        return arguments.map { ["OUT", "DIR"].contains($0) ? output : $0 == "SHARE" ? scratch.path("share") : $0 }
    }

    @Test(arguments: commands)
    func aFullStandardOutputIsAnError(arguments: [String]) throws {
        let full = try FileHandle(forWritingTo: URL(fileURLWithPath: "/dev/full"))
        defer { try? full.close() }
        let result = try StatetoolRunner.run(try resolve(arguments), standardOutput: full)
        #expect(result.status == 2, "\(arguments): \(result.stderr)")
        #expect(
            result.stderr.hasSuffix(Self.full) || result.stderr.hasSuffix("error: write failed: No space left on device\n"),
            "\(arguments): \(result.stderr)")
    }

    @Test(arguments: commands)
    func aReaderThatWentAwayEndsTheCommandQuietly(arguments: [String]) throws {
        let pipe = Pipe()
        try pipe.fileHandleForReading.close()
        let result = try StatetoolRunner.run(try resolve(arguments), standardOutput: pipe.fileHandleForWriting)
        try pipe.fileHandleForWriting.close()
        #expect(result.status == 141, "\(arguments): \(result.stderr)")
        #expect(!result.stderr.contains("standard output"), "\(arguments): \(result.stderr)")
        #expect(!result.stderr.contains("Broken pipe"), "\(arguments): \(result.stderr)")
    }

    @Test func libvirtXMLOnAFullOrClosedOutput() throws {
        let full = try FileHandle(forWritingTo: URL(fileURLWithPath: "/dev/full"))
        defer { try? full.close() }
        let header = LibvirtImageCommandTests.header(format: 6)
        let onFull = try StatetoolRunner.run(["libvirt", "xml", "-"], stdin: header, standardOutput: full)
        #expect(onFull.status == 2)
        #expect(onFull.stderr == Self.full)
        let pipe = Pipe()
        try pipe.fileHandleForReading.close()
        let gone = try StatetoolRunner.run(["libvirt", "xml", "-"], stdin: header, standardOutput: pipe.fileHandleForWriting)
        #expect(gone.status == 141)
        #expect(gone.stderr == "")
    }

    /// `replay` prints the back-end's verdict, `capture -o -` the stream: both
    /// against `statetool serve`, with standard output full.
    @Test(arguments: [["replay", state], ["replay", "--json", state], ["capture", "-o", "-"]])
    func liveCommandsOnAFullOutput(arguments: [String]) throws {
        let socket = scratch.path("vu-\(arguments.joined().count).sock")
        let serveArguments = arguments[0] == "capture" ? ["--state", Self.state] : []
        let server = try Peer.start(
            StatetoolRunner.executable.path, ["serve", "--once", "--socket", socket] + serveArguments, log: nil, waitingFor: socket)
        defer {
            if server.isRunning { server.terminate() }
            server.waitUntilExit()
        }
        let full = try FileHandle(forWritingTo: URL(fileURLWithPath: "/dev/full"))
        defer { try? full.close() }
        let command = [arguments[0], "--socket", socket] + arguments.dropFirst()
        let result = try StatetoolRunner.run(command, standardOutput: full)
        #expect(result.status == 2, "\(arguments): \(result.stderr)")
        #expect(
            result.stderr.hasSuffix(Self.full) || result.stderr.hasSuffix("error: write failed: No space left on device\n"),
            "\(arguments): \(result.stderr)")
    }

    @Test func aFullStandardErrorTurnsSuccessIntoStatus2() throws {
        // repair -o - writes the stream on standard output and its report of
        // what it changed on standard error: a report that cannot be written
        // is a failure, though the stream went out.
        let process = Process()
        process.executableURL = StatetoolRunner.executable
        process.arguments = ["repair", "Samples/truncated-chunk.state", "-o", "-"]
        process.currentDirectoryURL = Repository.root
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: "/dev/full"))
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 2)
    }
}
