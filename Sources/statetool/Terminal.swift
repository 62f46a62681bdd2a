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
        var text = "\r\u{1B}[K\(Format.bytes(bytes)) read, \(Format.rate(bytes, now - started))"
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

extension Duration {
    /// The duration in seconds.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// Text formatting for people.
enum Format {
    /// `bytes` per `elapsed`, as `1.2 GiB/s`.
    static func rate(_ bytes: UInt64, _ elapsed: Duration) -> String {
        "\(Format.bytes(UInt64(Double(bytes) / max(elapsed.seconds, 1e-6))))/s"
    }

    /// `elapsed` as `0.123 s`.
    static func seconds(_ elapsed: Duration) -> String {
        let milliseconds = Int64((elapsed.seconds * 1000).rounded())
        let fraction = String(milliseconds % 1000)
        return "\(milliseconds / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction) s"
    }

    /// `text` followed by spaces up to `width` characters.
    static func padded(_ text: String, to width: Int) -> String {
        text + String(repeating: " ", count: max(0, width - text.count))
    }

    /// `value` right-aligned in `width` characters.
    static func padded(_ value: some BinaryInteger, to width: Int) -> String {
        let text = String(value)
        return String(repeating: " ", count: max(0, width - text.count)) + text
    }

    /// `238452` as `232.9 KiB`; below 1 KiB, as `512 B`.
    static func bytes(_ count: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(count) B" }
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10) \(units[unit])"
    }
}
