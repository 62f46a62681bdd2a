import FoundationEssentials

/// Numbers and sizes as statetool shows them to people: padded columns,
/// sizes in binary units, rates and durations.
public enum TextFormat {
    /// `bytes` per `elapsed`, as `1.2 GiB/s`.
    public static func rate(_ bytes: UInt64, _ elapsed: Duration) -> String {
        "\(TextFormat.bytes(UInt64(Double(bytes) / max(elapsed.seconds, 1e-6))))/s"
    }

    /// `elapsed` as `0.123 s`.
    public static func seconds(_ elapsed: Duration) -> String {
        let milliseconds = Int64((elapsed.seconds * 1000).rounded())
        let fraction = String(milliseconds % 1000)
        return "\(milliseconds / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction) s"
    }

    /// `text` followed by spaces up to `width` characters.
    public static func padded(_ text: String, to width: Int) -> String {
        text + String(repeating: " ", count: max(0, width - text.count))
    }

    /// `value` right-aligned in `width` characters.
    public static func padded(_ value: some BinaryInteger, to width: Int) -> String {
        let text = String(value)
        return String(repeating: " ", count: max(0, width - text.count)) + text
    }

    /// `238452` as `232.9 KiB`; below 1 KiB, as `512 B`.
    public static func bytes(_ count: UInt64) -> String {
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

extension Duration {
    /// The duration in seconds.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
