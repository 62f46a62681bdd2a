import ArgumentParser

/// The exit statuses every command documents.
enum ExitStatus {
    /// The stream is valid.
    static let valid = ExitCode(0)
    /// The stream is invalid: an error, or with `--strict` a warning.
    static let invalid = ExitCode(1)
    /// An input could not be opened or read.
    static let unreadable = ExitCode(2)
}
