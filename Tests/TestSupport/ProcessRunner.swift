import Foundation

/// Starting other programs from tests: one way to run one to its end, one
/// way to start one that runs beside the test.
public enum ProcessRunner {
    /// What a finished program said and how it ended.
    public struct Result: Sendable {
        public let status: Int32
        public let stdoutBytes: Data
        public let stderrBytes: Data

        public var stdout: String { String(decoding: stdoutBytes, as: UTF8.self) }
        public var stderr: String { String(decoding: stderrBytes, as: UTF8.self) }
    }

    /// Runs `executable` to its end in `directory`, feeding `stdin` through a
    /// pipe when given (nothing otherwise). Its output goes to files, not
    /// pipes, so a program that writes much never waits on the test; standard
    /// output goes to `standardOutput` instead when it is given (`/dev/full`,
    /// the writing end of a pipe), and the result's is then empty.
    ///
    /// A program still running after `timeout` seconds (15 minutes by
    /// default: longer than any test waits for a peer) is killed, and its
    /// result says so: status 137 and a last line on its standard error, so
    /// that a program that blocks fails its test instead of hanging the run.
    public static func run(
        _ executable: String, _ arguments: [String], stdin: Data? = nil, in directory: URL = Repository.root,
        standardOutput: FileHandle? = nil, timeout: TimeInterval = 900
    ) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("statetool-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let out = scratch.appendingPathComponent("stdout"), err = scratch.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        process.standardOutput = try standardOutput ?? FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        let input = Pipe()
        process.standardInput = stdin == nil ? FileHandle.nullDevice : input
        let ended = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in ended.signal() }
        try process.run()
        if let stdin {
            let writer = input.fileHandleForWriting
            Thread.detachNewThread {
                try? writer.write(contentsOf: stdin)
                try? writer.close()
            }
        }
        var timedOut = false
        if ended.wait(timeout: .now() + timeout) == .timedOut {
            timedOut = true
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
        var stderr = try Data(contentsOf: err)
        if timedOut { stderr += Data("\nProcessRunner: \(executable) still ran after \(String(format: "%g", timeout)) s: killed\n".utf8) }
        return Result(status: timedOut ? 137 : process.terminationStatus, stdoutBytes: try Data(contentsOf: out), stderrBytes: stderr)
    }

    /// Starts `executable` with its output going to `log` (nowhere when
    /// `nil`) and its standard input from `stdin` when given, and waits up to
    /// 5 s for `socket` to listen when one is named (``isListening(_:)``). The
    /// caller stops it.
    public static func start(
        _ executable: String, _ arguments: [String], log: String?, stdin: Pipe? = nil, waitingFor socket: String? = nil
    ) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let log {
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        } else {
            process.standardError = FileHandle.nullDevice
        }
        process.standardOutput = process.standardError
        process.standardInput = stdin ?? FileHandle.nullDevice
        try process.run()
        if let socket { waitUntilListening(socket) }
        return process
    }

    /// Waits up to 5 s for the Unix socket at `path` to listen (``isListening(_:)``).
    public static func waitUntilListening(_ path: String) {
        for _ in 0..<500 where !isListening(path) { Thread.sleep(forTimeInterval: 0.01) }
    }

    /// Whether a Unix socket bound at `path` listens: `/proc/net/unix` lists it
    /// with `__SO_ACCEPTCON` (flags 00010000). The socket file appears at
    /// bind(2), a moment before listen(2): a client that connects in between
    /// is refused. Listening is read from the kernel, not probed by connecting,
    /// because virtiofsd serves one connection and exits.
    public static func isListening(_ path: String) -> Bool {
        guard FileManager.default.fileExists(atPath: path),
            let table = try? String(contentsOfFile: "/proc/net/unix", encoding: .utf8)
        else { return false }
        return table.split(separator: "\n").contains { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            return fields.count >= 8 && fields[3] == "00010000" && fields[7] == path
        }
    }
}
