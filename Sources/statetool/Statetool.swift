import ArgumentParser
import CBuildInfo
import SystemCalls

@main
struct Statetool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "statetool",
        abstract: "Inspect and check the back-end state streams of QEMU live migration.",
        discussion: """
            A vhost-user back-end (virtiofsd, vhost-user net) hands its internal state to QEMU \
            through a pipe; QEMU stores it in the migration stream as a chunk-framed state stream: \
            [be32 length][bytes] repeated, ended by a zero length. statetool reads such streams, \
            raw or compressed with zstd, gzip, bzip2 or xz (detected from the content), from a file \
            or from standard input (-), with bounded memory whatever their size; and whole QEMU \
            migration files and libvirt save images around them (migration, extract, preflight, \
            retarget, libvirt).

            EXIT STATUS
              0   the stream is valid
              1   the stream is invalid (an error; with --strict, a warning too)
              2   an input could not be read, or an output written
              64  the command line is wrong
            diff follows cmp: 0 same, 1 different, 2 trouble.

            Commands that write take -o FILE (default: standard output, never a terminal). A file \
            output is written to a temporary file in the same folder and renamed into place only on \
            success: a failed run leaves no output file and never touches its input.
            """,
        version: "\(String(cString: statetool_build_version())) (commit \(String(cString: statetool_build_commit())))",
        subcommands: [
            Validate.self, Inspect.self, Diff.self, Payload.self, Frame.self, Rechunk.self,
            Compress.self, Decompress.self, Repair.self, Replay.self, Capture.self, Serve.self,
            Migration.self, Extract.self, Preflight.self, Retarget.self, Libvirt.self,
        ]
    )

    /// A reader that goes away is a write error (EPIPE) with a message, not a
    /// silent death by SIGPIPE.
    ///
    /// A ``CommandFailure`` prints what it has to say and exits with its
    /// status; anything else is swift-argument-parser's to report.
    static func main() {
        Signals.ignore(.brokenPipe)
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let failure as CommandFailure {
            failure.printMessages()
            Signals.exit(failure.status.rawValue)
        } catch {
            exit(withError: error)
        }
    }
}
