/// A log line a rule of the diagnosis recognised: what it says, and where it is.
public struct LogLine: Hashable, Sendable {
    /// What it says.
    public let message: LogMessage
    /// The log's path as given.
    public let path: String
    /// Its line number, from 1.
    public let line: Int
    /// The byte offset of its first byte in the log.
    public let offset: UInt64
    /// The line as written, without its line feed (cut to
    /// ``LogAttempt/longestLine`` bytes).
    public let text: String

    /// A line from its parts.
    public init(message: LogMessage, path: String, line: Int, offset: UInt64, text: String) {
        self.message = message
        self.path = path
        self.line = line
        self.offset = offset
        self.text = text
    }

    /// The line as evidence.
    public var evidence: Evidence {
        Evidence(source: Evidence.Source(message.source), path: path, line: line, offset: offset, text: text)
    }
}
