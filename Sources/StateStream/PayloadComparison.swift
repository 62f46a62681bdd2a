import Glibc

/// How the payloads of two streams compare, whatever their framing: QEMU's chunk
/// boundaries are wherever a pipe read returned, so two captures of the same
/// state may be framed differently and still be the same.
public struct PayloadComparison: Sendable {
    /// Where a payload byte sits in one of the streams.
    public struct Location: Hashable, Sendable, Codable {
        /// The chunk holding it.
        public let chunkIndex: Int
        /// Its offset in the framed (decompressed) stream.
        public let fileOffset: UInt64

        /// The byte in chunk `chunkIndex`, at `fileOffset` of the framed stream.
        public init(chunkIndex: Int, fileOffset: UInt64) {
            self.chunkIndex = chunkIndex
            self.fileOffset = fileOffset
        }
    }

    /// The first stream, as `inspect` would describe it.
    public var a: StreamAnalysis
    /// The second stream.
    public var b: StreamAnalysis
    /// Payload offset of the first differing byte (or of the first byte one
    /// stream has and the other lacks); `nil` when the payloads are identical.
    public var firstDifference: UInt64?
    /// Where the first difference sits in `a`; `nil` if `a` ends before it.
    public var firstDifferenceInA: Location?
    /// Where the first difference sits in `b`; `nil` if `b` ends before it.
    public var firstDifferenceInB: Location?
    /// Differing payload ranges, merged when adjacent, in order; at most the
    /// number asked for. A length difference is one range past the shorter end.
    public var ranges: [Range<UInt64>] = []
    /// Differing ranges found beyond the ones kept.
    public var omittedRangeCount = 0
    /// Payload bytes in all differing ranges.
    public var differingBytes: UInt64 = 0
    /// Payload offset of the first context byte.
    public var contextOffset: UInt64 = 0
    /// Bytes both payloads share just before the first difference.
    public var contextBefore: [UInt8] = []
    /// `a`'s bytes from the first difference on.
    public var contextA: [UInt8] = []
    /// `b`'s bytes from the first difference on.
    public var contextB: [UInt8] = []

    /// Whether the payloads are the same bytes.
    public var identical: Bool { firstDifference == nil }

    /// Compares the payloads of `first` and `second`, reading both to the end.
    ///
    /// - Parameters:
    ///   - first: The first stream (``a``).
    ///   - second: The second stream (``b``).
    ///   - maximumRanges: How many differing ranges to keep.
    ///   - contextLength: How many bytes of context to keep on each side of the
    ///     first difference.
    ///   - maximumChunkLength: Longer chunks draw an `oversized-chunk` warning.
    public static func compare(
        _ first: StateStreamInput,
        _ second: StateStreamInput,
        maximumRanges: Int = 16,
        contextLength: Int = 16,
        maximumChunkLength: UInt32 = StateStreamFormat.qemuMaximumChunkLength
    ) throws -> PayloadComparison {
        var a = PayloadCursor(first, maximumChunkLength: maximumChunkLength)
        var b = PayloadCursor(second, maximumChunkLength: maximumChunkLength)
        var scan = DifferenceScan(maximumRanges: maximumRanges, contextLength: contextLength)
        while true {
            let hasA = try a.fill(), hasB = try b.fill()
            if hasA && hasB {
                let count = min(a.piece.count, b.piece.count)
                scan.compare(a.piece.prefix(count), b.piece.prefix(count), at: a.payloadOffset, a: a.location, b: b.location)
                a.advance(by: count)
                b.advance(by: count)
            } else if hasA {
                scan.extra(a.piece, at: a.payloadOffset, isA: true, location: a.location)
                a.advance(by: a.piece.count)
            } else if hasB {
                scan.extra(b.piece, at: b.payloadOffset, isA: false, location: b.location)
                b.advance(by: b.piece.count)
            } else {
                break
            }
        }
        scan.closeRange(at: max(a.payloadOffset, b.payloadOffset))
        return scan.result(a: try a.finish(), b: try b.finish())
    }
}

/// The running state of a comparison: open range, kept ranges, context.
private struct DifferenceScan {
    let maximumRanges: Int
    let contextLength: Int
    var firstDifference: UInt64?
    var firstInA: PayloadComparison.Location?
    var firstInB: PayloadComparison.Location?
    var openRangeStart: UInt64?
    var ranges: [Range<UInt64>] = []
    var omitted = 0
    var differingBytes: UInt64 = 0
    var before: [UInt8] = []
    var afterA: [UInt8] = []
    var afterB: [UInt8] = []

    init(maximumRanges: Int, contextLength: Int) {
        self.maximumRanges = maximumRanges
        self.contextLength = contextLength
    }

    /// Compares two equally long blocks starting at payload offset `offset`.
    mutating func compare(
        _ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>, at offset: UInt64,
        a locationA: PayloadComparison.Location, b locationB: PayloadComparison.Location
    ) {
        let equal = a.withUnsafeBytes { x in b.withUnsafeBytes { y in memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 } }
        if equal {
            closeRange(at: offset)
            if firstDifference == nil { remember(a) } else { collectAfter(a, b) }
            return
        }
        var index = a.startIndex, other = b.startIndex
        var firstIndex: Int?
        while index < a.endIndex {
            let position = offset + UInt64(index - a.startIndex)
            if a[index] != b[other] {
                if openRangeStart == nil { openRangeStart = position }
                differingBytes += 1
                if firstIndex == nil && firstDifference == nil { firstIndex = index - a.startIndex }
            } else {
                closeRange(at: position)
            }
            index += 1
            other += 1
        }
        if let firstIndex {
            firstDifference = offset + UInt64(firstIndex)
            firstInA = PayloadComparison.Location(chunkIndex: locationA.chunkIndex, fileOffset: locationA.fileOffset + UInt64(firstIndex))
            firstInB = PayloadComparison.Location(chunkIndex: locationB.chunkIndex, fileOffset: locationB.fileOffset + UInt64(firstIndex))
            remember(a.prefix(firstIndex))
            collectAfter(a.dropFirst(firstIndex), b.dropFirst(firstIndex))
        } else {
            collectAfter(a, b)
        }
    }

    /// Payload bytes only one side has, starting at `offset`.
    mutating func extra(_ bytes: ArraySlice<UInt8>, at offset: UInt64, isA: Bool, location: PayloadComparison.Location) {
        guard !bytes.isEmpty else { return }
        if openRangeStart == nil { openRangeStart = offset }
        differingBytes += UInt64(bytes.count)
        if firstDifference == nil {
            firstDifference = offset
            if isA { firstInA = location } else { firstInB = location }
        }
        if isA { collectAfter(bytes, []) } else { collectAfter([], bytes) }
    }

    mutating func closeRange(at end: UInt64) {
        guard let start = openRangeStart else { return }
        openRangeStart = nil
        if ranges.count < maximumRanges { ranges.append(start..<end) } else { omitted += 1 }
    }

    /// Keeps the last `contextLength` bytes seen before the first difference.
    private mutating func remember(_ bytes: ArraySlice<UInt8>) {
        guard contextLength > 0 else { return }
        if bytes.count >= contextLength {
            before = Array(bytes.suffix(contextLength))
        } else {
            before = Array((before + bytes).suffix(contextLength))
        }
    }

    private mutating func collectAfter(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>) {
        if afterA.count < contextLength { afterA += a.prefix(contextLength - afterA.count) }
        if afterB.count < contextLength { afterB += b.prefix(contextLength - afterB.count) }
    }

    func result(a: StreamAnalysis, b: StreamAnalysis) -> PayloadComparison {
        var comparison = PayloadComparison(a: a, b: b)
        comparison.firstDifference = firstDifference
        comparison.firstDifferenceInA = firstInA
        comparison.firstDifferenceInB = firstInB
        comparison.ranges = ranges
        comparison.omittedRangeCount = omitted
        comparison.differingBytes = differingBytes
        if let firstDifference {
            comparison.contextOffset = firstDifference - UInt64(before.count)
            comparison.contextBefore = before
            comparison.contextA = afterA
            comparison.contextB = afterB
        }
        return comparison
    }
}
