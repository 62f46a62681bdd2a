import Crypto
import Foundation
import TestSupport
import Testing

/// The real vhost-user peers `Scripts/install-peers` puts in place, and the
/// fixture guest's shared directory.
enum RealPeers {
    /// virtiofsd 1.13 from trixie, through its wrapper.
    static let virtiofsd = StatetoolRunner.packageDirectory.appendingPathComponent(".build-peers/virtiofsd/virtiofsd").path

    static let passt = StatetoolRunner.packageDirectory.appendingPathComponent(".build-peers/passt/passt").path

    /// Fails the test, saying how to get the peers, when passt is missing.
    static func requirePasst() throws {
        try #require(FileManager.default.isExecutableFile(atPath: passt), "passt is missing: run Scripts/install-peers")
    }

    /// A passt running in the background, by the pid it wrote.
    struct Passt {
        let pid: Int32

        /// Stops it if it has not stopped itself (passt exits after a save).
        func stop() {
            kill(pid, SIGKILL)
        }
    }

    /// Starts a fresh passt in vhost-user mode on `socket`, logging every
    /// message (`-d`) to `log`, and waits for its socket. passt daemonizes
    /// itself (not `-f`): a passt child of the test process keeps Foundation's
    /// Process from seeing other children exit.
    static func startPasst(socket: String, log: String, executable: String = passt) throws -> Passt {
        let pidFile = socket + ".pid"
        let started = try ProcessRunner.run(executable, ["--vhost-user", "--socket", socket, "-d", "-l", log, "-P", pidFile])
        try #require(started.status == 0, "passt did not start: \(started.stderr)")
        ProcessRunner.waitUntilListening(socket)
        let pid = try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        return Passt(pid: try #require(Int32(pid), "passt wrote no pid"))
    }

    /// Fails the test, saying how to get the peers, when virtiofsd is missing.
    static func requireVirtiofsd() throws {
        try #require(FileManager.default.isExecutableFile(atPath: virtiofsd), "virtiofsd is missing: run Scripts/install-peers")
    }

    /// Starts virtiofsd serving `sharedDirectory` on `socket`, logging to `log`,
    /// and waits for its socket.
    static func startVirtiofsd(sharedDirectory: String, socket: String, log: String, options: [String] = []) throws -> Process {
        try Peer.start(virtiofsd, ["--shared-dir=\(sharedDirectory)", "--socket-path=\(socket)", "--sandbox=none"] + options, log: log, waitingFor: socket)
    }

    /// Stops peers for good (children here may ignore SIGTERM).
    static func stop(_ processes: Process...) {
        for process in processes {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
    }

    /// Builds the fixture's shared directory as MANIFEST.md describes it:
    /// `tree/dDD/sSS/file-IIIII-HHHH.dat` (20 x 10 x 25 files), `extra/` and `hello.txt`;
    /// without `tree/d07` when `broken`.
    static func makeShare(at root: URL, broken: Bool = false) throws {
        let files = FileManager.default
        for d in 0..<20 where !(broken && d == 7) {
            for s in 0..<10 {
                let folder = root.appendingPathComponent(String(format: "tree/d%02d/s%02d", d, s))
                try files.createDirectory(at: folder, withIntermediateDirectories: true)
                for k in 0..<25 {
                    let index = d * 250 + s * 25 + k
                    let digest = SHA256.hash(data: Data("vfs-fixture-\(index)".utf8))
                    let hex = digest.map { String(format: "%02x", $0) }.joined().prefix(24)
                    let name = String(format: "file-%05d-", index) + hex + ".dat"
                    try Data(String(format: "fixture file %05d %@\n", index, String(hex)).utf8)
                        .write(to: folder.appendingPathComponent(name))
                }
            }
        }
        let extra = root.appendingPathComponent("extra")
        try files.createDirectory(at: extra, withIntermediateDirectories: true)
        for n in 0..<16 {
            try Data(String(format: "late open %02d\n", n).utf8).write(to: extra.appendingPathComponent(String(format: "late-open-%02d.txt", n)))
        }
        try Data("hello from the host\n".utf8).write(to: root.appendingPathComponent("hello.txt"))
    }
}

/// Starting the helper processes of the live tests.
enum Peer {
    /// Starts `executable` with its output going to `log` (nowhere when `nil`),
    /// and waits up to 5 s for `socket` to appear when one is named.
    static func start(_ executable: String, _ arguments: [String], log: String?, waitingFor socket: String? = nil) throws -> Process {
        try ProcessRunner.start(executable, arguments, log: log, waitingFor: socket)
    }

    /// Runs `executable` to its end in the package directory, with nothing on
    /// its standard input; returns its status and standard output.
    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, stdout: String) {
        let result = try ProcessRunner.run(executable, arguments)
        return (result.status, result.stdout)
    }

    /// Runs a Python helper of `Tests/Peers` to its end; returns its status and output.
    static func python(_ arguments: [String]) throws -> (status: Int32, stdout: String) {
        try run("/usr/bin/python3", arguments)
    }
}
