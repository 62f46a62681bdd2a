import Glibc
import SystemCalls
import SystemPackage

/// The last attempt a log records: the lines from its last start
/// (``LogMessage/attemptStarted(_:)``) to its end that a rule recognises.
///
/// A domain log holds every start of the domain; only the last one says why
/// the last restore failed. The log is read from its end in blocks until
/// that start is found, then its line numbers are counted from the front:
/// memory stays bounded whatever the log's size.
public struct LogAttempt: Sendable {
    /// The log's path as given.
    public let path: String
    /// The recognised lines of the last attempt, in the log's order (at most
    /// ``maximumLines``: the first ones of the attempt are kept).
    public let lines: [LogLine]
    /// Recognised lines left out past ``maximumLines``.
    public let omittedLines: Int
    /// The line where the last attempt starts (its start marker), from 1; 1
    /// when the log has no marker.
    public let firstLine: Int
    /// The byte offset where the last attempt starts.
    public let startOffset: UInt64
    /// The programs whose lines the attempt holds, as far as a line told.
    public let sources: Set<LogSource>

    /// The most recognised lines kept per log.
    public static let maximumLines = 2_000
    /// The longest line read whole; longer lines are cut.
    public static let longestLine = 16 << 10
    private static let blockSize = 64 << 10

    /// Why a log cannot be read.
    public struct Failure: Error, Equatable, Sendable, CustomStringConvertible {
        /// The log's path.
        public let path: String
        /// What failed.
        public let error: SystemCallError

        /// `PATH: error: ...`.
        public var description: String { "\(path): error: cannot read the log: \(error)" }
    }

    /// Reads the last attempt of the log at `path`.
    public static func read(_ path: String) throws(Failure) -> LogAttempt {
        do {
            let file = try Files.open(path, .readOnly)
            return try read(file.descriptor, path: path)
        } catch let error as SystemCallError {
            throw Failure(path: path, error: error)
        } catch {
            throw Failure(path: path, error: SystemCallError("read", .ioError))
        }
    }

    private static func read(_ file: FileDescriptor, path: String) throws -> LogAttempt {
        let size = try file.seek(offset: 0, from: .end)
        var buffer = [UInt8](repeating: 0, count: blockSize)
        // 1. From the end, block by block, to the last start marker.
        var start: UInt64 = 0
        var end = UInt64(size)
        var pending: [UInt8] = []  // the rest of the line that starts in an earlier block
        func isStart(_ bytes: ArraySlice<UInt8>, continuing: Bool) -> Bool {
            let line = continuing ? Array(bytes) + pending : Array(bytes)
            if case .attemptStarted = LogMessage(line: Substring(decoding: line.prefix(longestLine), as: UTF8.self)) { return true }
            return false
        }
        search: while end > 0 {
            let blockStart = end > UInt64(blockSize) ? end - UInt64(blockSize) : 0
            let count = try readFully(file, at: blockStart, into: &buffer, count: Int(end - blockStart))
            var lineEnd = count
            var index = count
            while index > 0 {
                index -= 1
                guard buffer[index] == 0x0A else { continue }
                if isStart(buffer[(index + 1)..<lineEnd], continuing: lineEnd == count) {
                    start = blockStart + UInt64(index + 1)
                    break search
                }
                lineEnd = index
            }
            if blockStart == 0 {
                break search  // the first line starts the log: it is the attempt's start either way
            }
            pending = Array((Array(buffer[0..<lineEnd]) + (lineEnd == count ? pending : [])).prefix(longestLine))
            end = blockStart
        }
        // 2. Line numbers: the line feeds before the start.
        var firstLine = 1
        var position: UInt64 = 0
        while position < start {
            let count = try readFully(file, at: position, into: &buffer, count: Int(min(UInt64(blockSize), start - position)))
            firstLine += lineFeeds(in: buffer, count: count).count
            position += UInt64(count)
        }
        // 3. The attempt, front to back.
        var lines: [LogLine] = []
        var omitted = 0
        var sources: Set<LogSource> = []
        var line = firstLine
        var current: [UInt8] = []
        var lineOffset = start
        position = start
        func finish(_ offset: UInt64) {
            let text = String(decoding: current, as: UTF8.self)
            if let message = LogMessage(line: Substring(text)) {
                sources.insert(message.source)
                if lines.count < maximumLines {
                    lines.append(LogLine(message: message, path: path, line: line, offset: lineOffset, text: text))
                } else {
                    omitted += 1
                }
            } else if let source = Self.writer(of: text) {
                sources.insert(source)
            }
            current.removeAll(keepingCapacity: true)
            line += 1
            lineOffset = offset
        }
        while position < UInt64(size) {
            let count = try readFully(file, at: position, into: &buffer, count: Int(min(UInt64(blockSize), UInt64(size) - position)))
            var lineStart = 0
            for feed in lineFeeds(in: buffer, count: count) + [count] {
                let end = min(feed, lineStart + max(0, longestLine - current.count))
                if end > lineStart { current += buffer[lineStart..<end] }
                if feed < count { finish(position + UInt64(feed) + 1) }
                lineStart = feed + 1
            }
            position += UInt64(count)
        }
        if !current.isEmpty { finish(position) }
        return LogAttempt(path: path, lines: lines, omittedLines: omitted, firstLine: firstLine, startOffset: start, sources: sources)
    }

    /// The program a line no rule reads comes from, by its form.
    static func writer(of line: String) -> LogSource? {
        if line.contains(" virtiofsd") && line.hasPrefix("[") { return .virtiofsd }
        if line.contains("qemu-system-") { return .qemu }
        if line.hasPrefix("passt") || line.contains(" passt:") { return .passt }
        return nil
    }

    /// The indices of the line feeds in `buffer`'s first `count` bytes, found with `memchr`.
    private static func lineFeeds(in buffer: [UInt8], count: Int) -> [Int] {
        buffer.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return [] }
            var found: [Int] = []
            var index = 0
            while index < count, let hit = memchr(base + index, 0x0A, count - index) {
                let at = base.distance(to: UnsafeRawPointer(hit))
                found.append(at)
                index = at + 1
            }
            return found
        }
    }

    private static func readFully(_ file: FileDescriptor, at offset: UInt64, into buffer: inout [UInt8], count: Int) throws -> Int {
        var done = 0
        while done < count {
            let read = try buffer.withUnsafeMutableBytes {
                try file.read(fromAbsoluteOffset: Int64(offset) + Int64(done), into: UnsafeMutableRawBufferPointer(rebasing: $0[done..<count]), retryOnInterrupt: true)
            }
            if read == 0 { break }
            done += read
        }
        return done
    }
}
