import FoundationEssentials
import SystemPackage

/// Buffered writes to standard output, flushed in large blocks.
final class StandardOutput {
    private var pending: [UInt8] = []
    private let blockSize = 64 * 1024

    func write(_ text: String) {
        pending.append(contentsOf: text.utf8)
        if pending.count >= blockSize { flush() }
    }

    func write(_ data: Data) {
        pending.append(contentsOf: data)
        if pending.count >= blockSize { flush() }
    }

    func flush() {
        guard !pending.isEmpty else { return }
        _ = try? FileDescriptor.standardOutput.writeAll(pending)
        pending.removeAll(keepingCapacity: true)
    }
}

extension StandardOutput {
    /// Prints `value` as one JSON object and a newline.
    static func printJSON(_ value: some Encodable) throws {
        let output = StandardOutput()
        output.write(try JSONEncoder.statetool.encode(value))
        output.write("\n")
        output.flush()
    }

    /// Prints the lines of a report where the command's data does not go: on
    /// standard error when the data goes to standard output, else here.
    static func printReport(_ text: String, dataOnStandardOutput: Bool) {
        if dataOnStandardOutput {
            text.split(separator: "\n").forEach { StandardError.write(String($0)) }
        } else {
            let output = StandardOutput()
            output.write(text)
            output.flush()
        }
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

/// An optional that JSON shows as `null` when absent, instead of leaving the key out.
struct Nullable<Wrapped: Encodable>: Encodable {
    let value: Wrapped?

    init(_ value: Wrapped?) {
        self.value = value
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let value { try container.encode(value) } else { try container.encodeNil() }
    }
}
