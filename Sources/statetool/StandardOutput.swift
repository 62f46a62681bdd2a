import FoundationEssentials
import StateStream
import SystemPackage
import StatetoolKit

/// Buffered writes to standard output, flushed in large blocks.
///
/// A write that fails is the command's failure: standard output full, closed or
/// failing (`/dev/full`: `ENOSPC`) is exit status 2 with a message on standard
/// error; a reader that went away (`| head`: `EPIPE`) ends the command quietly
/// with status 141 (``ExitStatus/readerGone``). Nothing is dropped silently.
final class StandardOutput {
    private var pending: [UInt8] = []
    private let blockSize = 64 * 1024

    func write(_ text: String) throws(CommandFailure) {
        pending.append(contentsOf: text.utf8)
        if pending.count >= blockSize { try flush() }
    }

    func write(_ data: Data) throws(CommandFailure) {
        pending.append(contentsOf: data)
        if pending.count >= blockSize { try flush() }
    }

    func write(_ bytes: [UInt8]) throws(CommandFailure) {
        pending.append(contentsOf: bytes)
        if pending.count >= blockSize { try flush() }
    }

    func flush() throws(CommandFailure) {
        guard !pending.isEmpty else { return }
        defer { pending.removeAll(keepingCapacity: true) }
        do {
            _ = try FileDescriptor.standardOutput.writeAll(pending)
        } catch {
            throw CommandFailure.writingStandardOutput(error)
        }
    }
}

extension StandardOutput {
    /// Writes `text` and a newline to standard output at once.
    static func print(_ text: String) throws(CommandFailure) {
        let output = StandardOutput()
        try output.write(text)
        try output.write("\n")
        try output.flush()
    }

    /// Prints `value` as one JSON object, with the `schema` key naming the
    /// schema it follows, and a newline.
    static func printJSON(_ value: some Encodable, schema: String) throws {
        let output = StandardOutput()
        try output.write(try JSONText.document(value, schema: schema))
        try output.write("\n")
        try output.flush()
    }

    /// Prints the lines of a report where the command's data does not go: on
    /// standard error when the data goes to standard output, else here.
    static func printReport(_ text: String, dataOnStandardOutput: Bool) throws(CommandFailure) {
        if dataOnStandardOutput {
            text.split(separator: "\n").forEach { StandardError.write(String($0)) }
        } else {
            let output = StandardOutput()
            try output.write(text)
            try output.flush()
        }
    }
}

extension CommandFailure {
    /// The failure for an error writing standard output: quiet, status 141, when
    /// its reader went away; a message and status 2 otherwise.
    static func writingStandardOutput(_ error: any Error) -> CommandFailure {
        switch error {
        case let errno as Errno where errno == .brokenPipe: return CommandFailure(.readerGone)
        case OutputError.writeFailed(.brokenPipe): return CommandFailure(.readerGone)
        case let errno as Errno: return CommandFailure(.unreadable, "statetool: error: cannot write standard output: \(errno)")
        default: return CommandFailure(.unreadable, "statetool: error: cannot write standard output: \(error)")
        }
    }
}

/// The one encoding of a `--json` object: sorted keys, unescaped slashes, and
/// the `schema` key naming the schema it follows.
enum JSONText {
    /// `value` as one line of JSON, following the schema `schema`.
    static func document(_ value: some Encodable, schema: String) throws -> String {
        String(decoding: try JSONEncoder.statetool.encode(SchemaDocument(value, schema: schema)), as: UTF8.self)
    }
}

extension JSONEncoder {
    /// Sorted keys, unescaped slashes: stable output for scripts and tests.
    static var statetool: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

