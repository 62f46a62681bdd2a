import ArgumentParser
import StateStream
import VhostUser
import StatetoolKit

/// What every command does the same way: open inputs, show progress, report
/// failures with their exit status.
enum CommandSupport {
    /// Opens the state stream at `path` (`-` for standard input), or reports
    /// why it cannot be read: exit status 2 for an unreadable file, `status`
    /// for a migration file or save image given as a stream.
    static func openStream(_ path: String, refusingWith status: ExitStatus = .invalid) throws -> StateStreamInput {
        do {
            return try Input.openStream(path)
        } catch {
            throw failure(error, refusingWith: status)
        }
    }

    /// Opens `path` (`-` for standard input) and tells what it is, or reports
    /// why it cannot be read: exit status 2 for an unreadable file, 1 for a
    /// save image whose header or XML is not what libvirt writes.
    static func open(_ path: String, savedStream: Bool = true) throws -> Input {
        do {
            return try Input.open(path, savedStream: savedStream)
        } catch {
            throw failure(error)
        }
    }

    /// The command's failure for an input it cannot take.
    static func failure(_ error: InputFailure, refusingWith status: ExitStatus = .invalid) -> CommandFailure {
        switch error {
        case .unreadable: return CommandFailure(.unreadable, "\(error)")
        case .badSaveImage: return CommandFailure(.invalid, "\(error)")
        case .notAStateStream: return CommandFailure(status, "\(error)")
        }
    }

    /// The failure to throw for an error reading `file` or writing an output:
    /// `file: error: …`, exit status 2. A ``CommandFailure`` passes unchanged,
    /// so one `catch` serves a block that throws both.
    static func fail(_ error: any Error, file: String) -> CommandFailure {
        switch error {
        case let failure as CommandFailure: return failure
        case let error as InputFailure: return self.failure(error)
        case let error as VhostUserError: return CommandFailure(error)
        case OutputError.writeFailed(.brokenPipe), InputError.copyFailed(.writeFailed(.brokenPipe)):
            return CommandFailure(.readerGone)
        case InputError.copyFailed(let output): return CommandFailure(.unreadable, "error: \(output)")
        case let error as OutputError: return CommandFailure(.unreadable, "error: \(error)")
        default: return CommandFailure(.unreadable, "\(file): error: \(error)")
        }
    }

    /// A stream's problems as standard error shows them, `file: severity: problem`.
    static func problemLines(of analysis: StreamAnalysis, file: String) -> [String] {
        var lines = analysis.problems.map { "\(file): \($0.severity.rawValue): \($0)" }
        if analysis.omittedProblemCount > 0 {
            lines.append("\(file): warning: \(analysis.omittedProblemCount) more warnings not shown")
        }
        if analysis.error != nil {
            lines.append("\(file): \(analysis.validPrefixSummary)")
        }
        return lines
    }

    /// Prints a stream's problems on standard error.
    static func reportProblems(of analysis: StreamAnalysis, file: String) {
        problemLines(of: analysis, file: file).forEach(StandardError.write)
    }

    /// The failure that refuses a broken input: its problems and a hint, exit status 1.
    static func refuse(_ analysis: StreamAnalysis, file: String, hint: String) -> CommandFailure {
        CommandFailure(.invalid, messages: problemLines(of: analysis, file: file) + ["\(file): refusing a broken stream: \(hint)"])
    }
}
