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
        var replay = StateReplay(stream)
        replay.force = force
        let checked: StateReplay.Check?
        do {
            checked = try replay.check()
        } catch {
            throw failure(error)
        }
        if let checked, checked.sendsValidPrefixOnly {
            CommandSupport.reportProblems(of: checked.analysis, file: stream)
            StandardError.write("\(stream): --force: sending the valid prefix, \(checked.analysis.payloadBytes) payload bytes")
        }
        let logStart = backendLog.map { BackEndLog.size(of: $0) }
        let outcome: StateReplay.Outcome
        do {
            var progress = ProgressLine(enabled: !self.progress.quiet, total: checked?.analysis.framedBytes)
            defer { progress.clear() }
            outcome = try replay.replay(into: connection.backEnd, checked: checked) { progress.update(bytes: $0) }
        } catch {
            if case .backEnd = error { printBackEndLog(from: logStart) }
            throw failure(error)
        }
        try report(outcome)
        printBackEndLog(from: logStart)
        if outcome.verdict != 0 { throw CommandFailure(.stateRejected) }
    }

    /// The command's failure for `error`, with what it has to say.
    private func failure(_ error: StateReplay.Failure) -> CommandFailure {
        switch error {
        case .brokenFile(let analysis):
            return CommandSupport.refuse(analysis, file: stream, hint: "nothing was sent; --force sends its valid prefix")
        case .abortedTransfer(let analysis, let payloadBytes):
            return CommandFailure(.invalid, messages: CommandSupport.problemLines(of: analysis, file: stream) + [
                "\(stream): transfer aborted after \(payloadBytes) payload bytes, as QEMU aborts: pipe closed, no CHECK_DEVICE_STATE sent"
            ])
        case .backEnd(let error):
            return CommandFailure(error)
        case .input(let failure):
            return CommandSupport.failure(failure)
        case .reading(let error):
            return CommandSupport.fail(error, file: stream)
        }
    }

    private func report(_ outcome: StateReplay.Outcome) throws {
        let sent = outcome.sent
        if format.json {
            try StandardOutput.printJSON(outcome.report(file: stream), schema: "replay")
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
