import StateStream
import Synchronization
import SystemCalls
import SystemPackage

/// Standard error, for messages and progress: data goes to standard output.
///
/// A write that fails cannot be reported where messages go; it is remembered
/// instead, and the command then exits with status 2 however it ended
/// (``Statetool/main()`` asks ``hasFailed``).
enum StandardError {
    private static let failed = Atomic<Bool>(false)

    /// Writes `line` and a newline to standard error.
    static func write(_ line: String) {
        writeRaw(line + "\n")
    }

    /// Writes `text` as it is (progress lines rewrite themselves with `\r`).
    static func writeRaw(_ text: String) {
        do {
            _ = try FileDescriptor.standardError.writeAll(text.utf8)
        } catch {
            failed.store(true, ordering: .relaxed)
        }
    }

    /// Whether a write to standard error has failed.
    static var hasFailed: Bool { failed.load(ordering: .relaxed) }

    /// Whether standard error is a terminal.
    static var isTerminal: Bool { Files.isTerminal(.standardError) }
}

/// A one-line progress display on standard error: bytes done, rate, and the
/// percentage when the input's size is known. Shown only when standard error is
/// a terminal, only for work that lasts more than a second, and refreshed at
/// most four times a second.
struct ProgressLine {
    private let enabled: Bool
    private let total: UInt64?
    private let started = ContinuousClock.now
    private var lastShown: ContinuousClock.Instant?
    private var shown = false

    init(enabled: Bool, total: UInt64?) {
        self.enabled = enabled && StandardError.isTerminal
        self.total = total
    }

    /// Progress through `input`, shown unless `quiet`.
    init(for input: StateStreamInput, quiet: Bool) {
        self.init(enabled: !quiet, total: input.regularFileSize)
    }

    /// Shows `bytes` of the input processed so far.
    mutating func update(bytes: UInt64) {
        guard enabled else { return }
        let now = ContinuousClock.now
        guard now - started > .seconds(1), lastShown.map({ now - $0 > .milliseconds(250) }) ?? true else { return }
        lastShown = now
        shown = true
        var text = "\r\u{1B}[K\(TextFormat.bytes(bytes)) read, \(TextFormat.rate(bytes, now - started))"
        if let total, total > 0 { text += ", \(min(100, bytes * 100 / total))%" }
        StandardError.writeRaw(text)
    }

    /// Removes the line, if it is shown.
    mutating func clear() {
        guard shown else { return }
        shown = false
        StandardError.writeRaw("\r\u{1B}[K")
    }
}


