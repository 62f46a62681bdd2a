/// The distribution of a stream's chunk lengths: minimum, median, maximum and a
/// power-of-two histogram.
///
/// It counts each distinct length once. Since distinct lengths that add up to n
/// bytes number at most about √(2n), its memory grows with the square root of the
/// payload at worst (about 130,000 entries for 8 GiB of ever-different chunks) and
/// stays tiny for what QEMU writes (a handful of distinct lengths).
public struct ChunkSizeStatistics: Sendable {
    /// One histogram bar: chunks longer than `lowerBound` and at most `upperBound` bytes.
    public struct Bucket: Hashable, Sendable, Codable {
        /// Lengths in this bucket are greater than this.
        public let lowerBound: UInt64
        /// Lengths in this bucket are at most this (a power of two).
        public let upperBound: UInt64
        /// How many chunks fall in it.
        public let count: Int

        /// A bar of `count` chunks, longer than `lowerBound` and at most
        /// `upperBound` bytes.
        public init(lowerBound: UInt64, upperBound: UInt64, count: Int) {
            self.lowerBound = lowerBound
            self.upperBound = upperBound
            self.count = count
        }
    }

    private var countsByLength: [UInt32: Int] = [:]

    /// Statistics of no chunks yet.
    public init() {}

    /// Counts one chunk of `length` bytes.
    public mutating func record(_ length: UInt32) {
        countsByLength[length, default: 0] += 1
    }

    /// How many chunks were recorded.
    public var count: Int { countsByLength.values.reduce(0, +) }

    /// The shortest chunk, or `nil` without chunks.
    public var minimum: UInt32? { countsByLength.keys.min() }

    /// The longest chunk, or `nil` without chunks.
    public var maximum: UInt32? { countsByLength.keys.max() }

    /// The median length; for an even count, the lower of the two middle lengths,
    /// so that it is always a length that occurs. `nil` without chunks.
    public var median: UInt32? {
        let total = count
        guard total > 0 else { return nil }
        let wanted = (total - 1) / 2
        var seen = 0
        for length in countsByLength.keys.sorted() {
            seen += countsByLength[length]!
            if seen > wanted { return length }
        }
        return nil
    }

    /// Non-empty buckets in ascending order. Bucket bounds are powers of two:
    /// `(32768, 65536]` holds a 65536-byte chunk.
    public var histogram: [Bucket] {
        var counts: [Int: Int] = [:]
        for (length, count) in countsByLength {
            counts[Self.bucketExponent(of: length), default: 0] += count
        }
        return counts.keys.sorted().map { exponent in
            Bucket(
                lowerBound: exponent == 0 ? 0 : UInt64(1) << (exponent - 1),
                upperBound: UInt64(1) << exponent,
                count: counts[exponent]!)
        }
    }

    /// The smallest e with `length <= 2^e`.
    private static func bucketExponent(of length: UInt32) -> Int {
        length <= 1 ? 0 : UInt32.bitWidth - (length - 1).leadingZeroBitCount
    }
}
