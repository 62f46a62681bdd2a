import ArgumentParser
import StateStream

/// What every command does the same way: open inputs, show progress, report
/// failures with their exit status.
enum CommandSupport {
    /// Opens a stream input, or reports why it cannot be opened.
    static func openInput(_ path: String) throws -> StateStreamInput {
        do {
            return try StateStreamInput(path: path)
        } catch {
            throw fail(error, file: path)
        }
    }

    /// Prints `file: error: …` for an input or output failure and returns the
    /// exit status to throw (2).
    static func fail(_ error: any Error, file: String) -> ExitCode {
        switch error {
        case InputError.copyFailed(let output): StandardError.write("error: \(output)")
        case let error as InputError: StandardError.write("\(file): error: \(error)")
        case let error as OutputError: StandardError.write("error: \(error)")
        default: StandardError.write("\(file): error: \(error)")
        }
        return ExitStatus.unreadable
    }

    /// Prints a broken stream's problems on standard error, `file: severity: problem`.
    static func reportProblems(of analysis: StreamAnalysis, file: String) {
        for problem in analysis.problems {
            StandardError.write("\(file): \(problem.severity.rawValue): \(problem)")
        }
        if analysis.omittedProblemCount > 0 {
            StandardError.write("\(file): warning: \(analysis.omittedProblemCount) more warnings not shown")
        }
        if analysis.error != nil {
            StandardError.write("\(file): \(analysis.validPrefixSummary)")
        }
    }

    /// Refuses a broken input: prints its problems and a hint, returns exit status 1.
    static func refuse(_ analysis: StreamAnalysis, file: String, hint: String) -> ExitCode {
        reportProblems(of: analysis, file: file)
        StandardError.write("\(file): refusing a broken stream: \(hint)")
        return ExitStatus.invalid
    }
}
