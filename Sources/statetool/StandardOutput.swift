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
