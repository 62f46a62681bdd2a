import Foundation

/// Runs the built `statetool` binary the way a user does and captures what it prints.
struct StatetoolRunner {
    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
        var stdoutBytes: Data
    }

    /// The repository root.
    static let packageDirectory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `Samples/NAME`.
    static func sample(_ name: String) -> String {
        packageDirectory.appendingPathComponent("Samples/\(name)").path
    }

    /// The binary SwiftPM built next to this test bundle.
    static let executable: URL = {
        let testBinary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return testBinary.deletingLastPathComponent().appendingPathComponent("statetool")
    }()

    /// Runs `statetool arguments`, feeding `stdin` through a pipe when given, in
    /// `directory` (the package directory by default).
    static func run(_ arguments: [String], stdin: Data? = nil, in directory: URL = packageDirectory) throws -> Result {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("statetool-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let out = scratch.appendingPathComponent("stdout"), err = scratch.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        let input = Pipe()
        process.standardInput = stdin == nil ? FileHandle.nullDevice : input
        try process.run()
        if let stdin {
            let writer = input.fileHandleForWriting
            Thread.detachNewThread {
                try? writer.write(contentsOf: stdin)
                try? writer.close()
            }
        }
        process.waitUntilExit()
        let stdoutBytes = try Data(contentsOf: out)
        return Result(
            status: process.terminationStatus,
            stdout: String(decoding: stdoutBytes, as: UTF8.self),
            stderr: String(decoding: try Data(contentsOf: err), as: UTF8.self),
            stdoutBytes: stdoutBytes)
    }
}
