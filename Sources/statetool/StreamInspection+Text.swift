import StateStream
import StatetoolKit

extension StreamInspection {
    /// The report for people.
    var text: String {
        let sizes = analysis.chunkSizes
        var lines: [(String, String)] = [
            ("file", file),
            ("compression", analysis.compression == .zstd
                ? "zstd (\(analysis.compressedBytes ?? 0) compressed bytes)" : "none"),
            ("valid", valid ? "yes" : "no"),
            ("chunks", "\(analysis.chunkCount)"),
            ("payload", "\(analysis.payloadBytes) bytes (\(TextFormat.bytes(analysis.payloadBytes)))"),
            ("framed", "\(analysis.framedBytes) bytes, framing overhead \(analysis.framingOverhead) bytes"),
        ]
        if let minimum = sizes.minimum, let median = sizes.median, let maximum = sizes.maximum {
            lines.append(("chunk sizes", "min \(minimum), median \(median), max \(maximum)"))
        }
        lines.append(("terminator", analysis.terminatorOffset.map { "at offset \($0)" } ?? "none"))
        lines.append(("payload sha256", analysis.payloadSHA256 ?? "-"))
        if analysis.error != nil {
            lines.append(("valid prefix", "\(analysis.validPrefixLength) bytes"))
        }
        if let payload {
            switch payload.result {
            case .success(let state): lines += state.summary.map { ($0.label, $0.value) }
            case .failure(let failure): lines.append((payload.backEnd, "begins like a \(payload.backEnd) state but does not decode: \(failure)"))
            }
        }
        lines.append(("problems", analysis.problems.isEmpty ? "none" : "\(analysis.problems.count + analysis.omittedProblemCount)"))
        var text = lines.map { TextFormat.padded($0.0, to: 16) + $0.1 + "\n" }.joined()
        for problem in analysis.problems {
            text += "  \(problem.severity.rawValue): \(problem)\n"
        }
        if analysis.omittedProblemCount > 0 {
            text += "  ... and \(analysis.omittedProblemCount) more warnings\n"
        }
        let histogram = sizes.histogram
        if !histogram.isEmpty {
            text += "chunk size histogram\n"
            let largest = histogram.map(\.count).max()!
            for bucket in histogram {
                let range = "\(bucket.lowerBound + (bucket.lowerBound == 0 ? 0 : 1)) - \(bucket.upperBound)"
                let bar = String(repeating: "#", count: max(1, bucket.count * 40 / largest))
                text += "  " + TextFormat.padded(range, to: 22)
                    + TextFormat.padded(String(bucket.count), to: 10) + bar + "\n"
            }
        }
        return text
    }
}
