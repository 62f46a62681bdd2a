import MigrationFile
import StateStream

/// A problem as every command's `--json` shows it: `{kind, severity, offset,
/// offsetIsCompressed, message}`, where `offsetIsCompressed` says that the
/// offset counts bytes of the zstd input rather than of the framed stream or file.
struct ProblemJSON: Encodable {
    let kind: String
    let severity: String
    let offset: UInt64
    let offsetIsCompressed: Bool
    let message: String

    init(_ problem: StreamProblem) {
        kind = problem.kind.rawValue
        severity = problem.severity.rawValue
        offset = problem.offset
        offsetIsCompressed = problem.offsetIsCompressed
        message = problem.message
    }

    init(_ problem: MigrationProblem) {
        kind = problem.kind.rawValue
        severity = problem.severity.rawValue
        offset = problem.offset
        offsetIsCompressed = problem.offsetIsCompressed
        message = problem.message
    }
}
