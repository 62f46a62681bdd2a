/// Feeds a decoder its input split in every way that matters, as
/// swift-nio's `ByteToMessageDecoderVerifier` does: whole, one byte at a
/// time, and cut in two at every offset. A decoder that keeps state across
/// reads must give the same result each time.
public enum SplitVerifier {
    /// How one run splits the input: the n-th read returns at most `readSizes(n)` bytes.
    public struct Split: Sendable, CustomStringConvertible {
        public let description: String
        public let readSizes: @Sendable (Int) -> Int
    }

    /// Whole, a byte at a time, then every cut `[k, rest]` for `k` in `1..<count`.
    public static func splits(ofCount count: Int) -> [Split] {
        var splits = [
            Split(description: "whole", readSizes: { _ in .max }),
            Split(description: "one byte at a time", readSizes: { _ in 1 }),
        ]
        for cut in 1..<max(1, count) {
            splits.append(Split(description: "cut at \(cut)", readSizes: { $0 == 0 ? cut : .max }))
        }
        return splits
    }

    /// The first split whose result differs from the whole input's, with
    /// both results; `nil` when every split agrees.
    public static func firstDisagreement<Result: Equatable>(
        count: Int, decode: (Split) throws -> Result
    ) rethrows -> (split: Split, whole: Result, got: Result)? {
        let all = splits(ofCount: count)
        let whole = try decode(all[0])
        for split in all.dropFirst() {
            let got = try decode(split)
            if got != whole { return (split, whole, got) }
        }
        return nil
    }
}
