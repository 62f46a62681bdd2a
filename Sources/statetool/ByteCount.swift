import ArgumentParser

/// A size on the command line: a number of bytes, or a number with a binary
/// suffix K, M or G (optionally followed by `iB` or `B`): `65536`, `64K`, `1M`.
struct ByteCount: ExpressibleByArgument, Equatable {
    let bytes: UInt64

    init(bytes: UInt64) {
        self.bytes = bytes
    }

    init?(argument: String) {
        var digits = Substring(argument)
        for suffix in ["iB", "B"] where digits.hasSuffix(suffix) && digits.count > suffix.count {
            digits = digits.dropLast(suffix.count)
            break
        }
        var multiplier: UInt64 = 1
        if let last = digits.last, let shift = ["K": 10, "M": 20, "G": 30][last.uppercased()] {
            multiplier = 1 << UInt64(shift)
            digits = digits.dropLast()
        }
        guard let value = UInt64(digits) else { return nil }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { return nil }
        self.bytes = bytes
    }

    var defaultValueDescription: String {
        bytes % (1 << 20) == 0 ? "\(bytes >> 20)M" : bytes % (1 << 10) == 0 ? "\(bytes >> 10)K" : "\(bytes)"
    }
}
