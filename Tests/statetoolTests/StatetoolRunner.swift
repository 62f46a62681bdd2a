import Foundation
import TestSupport
import Testing

/// Runs the built `statetool` binary the way a user does and captures what it prints.
struct StatetoolRunner {
    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
        var stdoutBytes: Data

        /// Standard output read as the JSON object a `--json` command prints.
        func jsonObject() throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: stdoutBytes) as? [String: Any], "not a JSON object: \(stdout)")
        }
    }

    /// The repository root.
    static let packageDirectory = Repository.root

    /// `Samples/NAME`.
    static func sample(_ name: String) -> String {
        Repository.sample(name)
    }

    /// The binary SwiftPM built next to this test bundle.
    static let executable: URL = {
        let testBinary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return testBinary.deletingLastPathComponent().appendingPathComponent("statetool")
    }()

    /// Runs `statetool arguments`, feeding `stdin` through a pipe when given, in
    /// `directory` (the package directory by default).
    static func run(
        _ arguments: [String], stdin: Data? = nil, in directory: URL = packageDirectory, standardOutput: FileHandle? = nil
    ) throws -> Result {
        let result = try ProcessRunner.run(executable.path, arguments, stdin: stdin, in: directory, standardOutput: standardOutput)
        return Result(status: result.status, stdout: result.stdout, stderr: result.stderr, stdoutBytes: result.stdoutBytes)
    }
}
