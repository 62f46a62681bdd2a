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
              0    the stream is valid; the back-end accepted the state
              1    the stream is invalid (an error; with --strict, a warning too), the inputs \
            differ, the state would fail, the command refused its input
              2    an input could not be read, or an output written (standard output or \
            standard error full or failing included)
              3    the back-end rejected the state (CHECK_DEVICE_STATE non-zero)
              4    cannot connect to the back-end
              5    the back-end lacks device-state support
              6    SET_DEVICE_STATE_FD was refused
              7    the back-end hung up
              8    the back-end said nothing for the whole timeout
              9    the back-end broke the protocol
              64   the command line is wrong
              141  the reader of standard output went away (| head): the command ends quietly
            diff follows cmp: 0 same, 1 different, 2 trouble.

            Commands that write take -o FILE (default: standard output, never a terminal). A file \
            output is written to a temporary file in the same folder and renamed into place only on \
            success: a failed run leaves no output file and never touches its input.
            """,
        version: "\(String(cString: statetool_build_version())) (commit \(String(cString: statetool_build_commit())))",
        subcommands: [
            Validate.self, Inspect.self, Diff.self, Payload.self, Frame.self, Rechunk.self,
            Compress.self, Decompress.self, Repair.self, Replay.self, Capture.self, Serve.self,
            Migration.self, Extract.self, Preflight.self, Retarget.self, Diagnose.self, Libvirt.self, Schema.self,
        ]
    )

    /// Runs the command the arguments name and exits with its status.
    ///
    /// A reader that goes away is a write error (EPIPE), not a silent death by
    /// SIGPIPE: the command ends quietly with status 141. A ``CommandFailure``
    /// prints what it has to say and exits with its status; help, version and
    /// usage errors are swift-argument-parser's, written here so that a failing
    /// standard output is reported like any other. A write to standard error that
    /// failed turns a success into status 2.
    static func main() {
        Signals.ignore(.brokenPipe)
        var status: Int32
        do {
            var command = try parseAsRoot()
            try command.run()
            status = ExitStatus.success.rawValue
        } catch let failure as CommandFailure {
            failure.printMessages()
            status = failure.status.rawValue
        } catch {
            status = exitCode(for: error).rawValue
            let message = fullMessage(for: error)
            if status == ExitStatus.success.rawValue {
                do {
                    if !message.isEmpty { try StandardOutput.print(message) }
                } catch {
                    error.printMessages()
                    status = error.status.rawValue
                }
            } else if !message.isEmpty {
                StandardError.write(message)
            }
        }
        if status == ExitStatus.success.rawValue, StandardError.hasFailed {
            status = ExitStatus.unreadable.rawValue
        }
        Signals.exit(status)
    }
}
