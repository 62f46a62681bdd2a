import ArgumentParser
import FoundationEssentials
import StateStream
import SystemPackage
import VhostUser
import StatetoolKit

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay a state stream into a live vhost-user back-end through its load path.",
        discussion: """
            Connects as the front-end and does what QEMU's destination does: its initialisation for \
            a vhost-user-fs device (GET_FEATURES, GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, \
            GET_QUEUE_NUM, GET_MAX_MEM_SLOTS, SET_OWNER, GET_FEATURES), SET_DEVICE_STATE_FD (LOAD, \
            STOPPED) with a pipe, the payload into the pipe, then CHECK_DEVICE_STATE, and reports the \
            back-end's verdict. A file is validated before connecting, so a broken stream never \
            reaches the back-end (--force sends its valid prefix anyway); from standard input a \
            framing error mid-way aborts as QEMU does: the pipe is closed and no CHECK is sent.

            Exit status: \(ExitStatus.liveSummary)
            """
    )

    @OptionGroup var connection: SocketOptions

    @Flag(help: "Send the valid prefix of a broken stream instead of refusing it.")
    var force = false

    @Option(help: ArgumentHelp("The back-end's log file: its new lines are printed with the verdict.", valueName: "file"))
    var backendLog: String?

    @OptionGroup var format: JSONOption

    @OptionGroup var progress: ProgressOption

    @Argument(help: ArgumentHelp("The stream: a file, or - for standard input. Raw or compressed (zstd, gzip, bzip2, xz).", valueName: "stream"))
    var stream: String

    func run() throws {
        let (validated, sendingPrefixOnly) = try validateFile()
        let logStart = backendLog.map { BackEndLog.size(of: $0) }
        let outcome = try transfer(validated: validated, sendingPrefixOnly: sendingPrefixOnly, logStart: logStart)
        try report(outcome)
        printBackEndLog(from: logStart)
        if outcome.verdict != 0 { throw CommandFailure(.stateRejected) }
    }

    /// What one replay did.
    private struct Outcome {
        let sent: StateTransfer.Sent
        let verdict: UInt64
        let transferTime: Duration
        let checkTime: Duration
    }

    /// A file is checked before anything connects: a broken one is refused, or
    /// with --force its valid prefix is what will be sent. Standard input is
    /// checked as it is sent.
    private func validateFile() throws -> (analysis: StreamAnalysis?, sendingPrefixOnly: Bool) {
        guard stream != "-" else { return (nil, false) }
        let analysis: StreamAnalysis
        do {
            analysis = try StreamAnalysis.analyze(CommandSupport.openStream(stream), computeDigest: false)
        } catch {
            throw CommandSupport.fail(error, file: stream)
        }
        guard analysis.error != nil else { return (analysis, false) }
        guard force else {
            throw CommandSupport.refuse(analysis, file: stream, hint: "nothing was sent; --force sends its valid prefix")
        }
        CommandSupport.reportProblems(of: analysis, file: stream)
        StandardError.write("\(stream): --force: sending the valid prefix, \(analysis.payloadBytes) payload bytes")
        return (analysis, true)
    }

    /// Connects, sends the payload through the back-end's load path and asks for its verdict.
    private func transfer(validated: StreamAnalysis?, sendingPrefixOnly: Bool, logStart: UInt64?) throws -> Outcome {
        let input = try CommandSupport.openStream(stream)
        do {
            let frontEnd = try connection.connect()
            let pipe = try frontEnd.startTransfer(.load)
            var progress = ProgressLine(for: input, quiet: self.progress.quiet)
            defer { progress.clear() }
            let started = ContinuousClock.now
            let sent: StateTransfer.Sent
            if let validated, input.compression == .none, let file = input.regularFile {
                // A validated raw file: splice the bodies, no copy through this process.
                let moved = try StateTransfer.splicePayload(
                    ofValidatedFile: file, chunkCount: validated.chunkCount, into: pipe, timeout: frontEnd.timeout
                ) { progress.update(bytes: $0) }
                sent = StateTransfer.Sent(analysis: validated, payloadBytes: moved, chunks: validated.chunkCount)
            } else {
                sent = try StateTransfer.sendPayload(of: input, into: pipe, timeout: frontEnd.timeout) { progress.update(bytes: $0) }
            }
            progress.clear()
            if sent.analysis.error != nil && !sendingPrefixOnly {
                CommandSupport.reportProblems(of: sent.analysis, file: stream)
                StandardError.write("\(stream): transfer aborted after \(sent.payloadBytes) payload bytes, as QEMU aborts: pipe closed, no CHECK_DEVICE_STATE sent")
                throw CommandFailure(.invalid)
            }
            let transferTime = ContinuousClock.now - started
            let verdict = try frontEnd.checkDeviceState()
            return Outcome(sent: sent, verdict: verdict, transferTime: transferTime, checkTime: ContinuousClock.now - started - transferTime)
        } catch let error as VhostUserError {
            printBackEndLog(from: logStart)
            throw CommandFailure(error)
        } catch {
            throw CommandSupport.fail(error, file: stream)
        }
    }

    private func report(_ outcome: Outcome) throws {
        let sent = outcome.sent
        if format.json {
            let report = ReplayReport(
                file: stream, chunks: sent.chunks, payloadBytes: sent.payloadBytes,
                transferSeconds: outcome.transferTime.seconds, checkSeconds: outcome.checkTime.seconds,
                checkDeviceState: outcome.verdict)
            try StandardOutput.printJSON(report, schema: "replay")
        } else {
            try StandardOutput.print("sent \(sent.payloadBytes) payload bytes in \(sent.chunks) chunks in \(TextFormat.seconds(outcome.transferTime)) (\(TextFormat.rate(sent.payloadBytes, outcome.transferTime)))")
            try StandardOutput.print(outcome.verdict == 0
                  ? "the back-end accepted the state (CHECK_DEVICE_STATE 0) after \(TextFormat.seconds(outcome.checkTime))"
                  : "the back-end rejected the state (CHECK_DEVICE_STATE \(outcome.verdict)) after \(TextFormat.seconds(outcome.checkTime))")
        }
    }

    private func printBackEndLog(from start: UInt64?) {
        guard let backendLog, let start else { return }
        let lines = BackEndLog.lines(of: backendLog, from: start)
        guard !lines.isEmpty else { return }
        StandardError.write("back-end log (\(backendLog)):")
        lines.forEach { StandardError.write("  \($0)") }
    }
}

/// The back-end's log file, read from where it ended before the replay.
enum BackEndLog {
    static func size(of path: String) -> UInt64 {
        (try? FileDescriptorSource(path: path).regularFileSize) ?? 0
    }

    /// The lines written to `path` past `offset`.
    static func lines(of path: String, from offset: UInt64) -> [String] {
        guard let file = try? FileDescriptor.open(FilePath(path), .readOnly) else { return [] }
        defer { try? file.close() }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var position = Int64(offset)
        while bytes.count < 1 << 20,
              let count = try? buffer.withUnsafeMutableBytes({ try file.read(fromAbsoluteOffset: position, into: $0) }),
              count > 0 {
            bytes += buffer.prefix(count)
            position += Int64(count)
        }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
    }
}
