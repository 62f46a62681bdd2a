import FoundationEssentials
import PasstState
import StateStream
import VirtiofsdState

/// What `inspect` prints, as text or JSON.
struct InspectReport: Encodable {
    let file: String
    let analysis: StreamAnalysis
    let valid: Bool
    /// What the payload holds if it is a virtiofsd state.
    var virtiofsd: Result<VirtiofsdReport, VirtiofsdDecodingError>?
    /// What the payload holds if it begins with passt's magic.
    var passt: Result<PasstReport, PasstDecodingError>?

    init(file: String, analysis: StreamAnalysis, strict: Bool) {
        self.file = file
        self.analysis = analysis
        self.valid = analysis.isValid(strict: strict)
    }

    private enum Key: String, CodingKey {
        case file, compression, valid, chunks, payloadBytes, framedBytes, compressedBytes, framingOverhead
        case payloadSHA256, chunkSizes, chunkHistogram, terminatorOffset, problems, omittedProblems, validPrefix
        case virtiofsd, virtiofsdError, passt, passtError
    }

    private struct Sizes: Encodable {
        let min: UInt32?
        let median: UInt32?
        let max: UInt32?
    }

    private struct Prefix: Encodable {
        let bytes: UInt64
        let chunks: Int
        let payloadBytes: UInt64
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        let sizes = analysis.chunkSizes
        try container.encode(file, forKey: .file)
        try container.encode(analysis.compression, forKey: .compression)
        try container.encode(valid, forKey: .valid)
        try container.encode(analysis.chunkCount, forKey: .chunks)
        try container.encode(analysis.payloadBytes, forKey: .payloadBytes)
        try container.encode(analysis.framedBytes, forKey: .framedBytes)
        try container.encode(analysis.compressedBytes, forKey: .compressedBytes)
        try container.encode(analysis.framingOverhead, forKey: .framingOverhead)
        try container.encode(analysis.payloadSHA256, forKey: .payloadSHA256)
        try container.encode(Sizes(min: sizes.minimum, median: sizes.median, max: sizes.maximum), forKey: .chunkSizes)
        try container.encode(sizes.histogram, forKey: .chunkHistogram)
        try container.encode(analysis.terminatorOffset, forKey: .terminatorOffset)
        try container.encode(analysis.problems.map { ProblemJSON($0) }, forKey: .problems)
        try container.encode(analysis.omittedProblemCount, forKey: .omittedProblems)
        try container.encode(
            Prefix(bytes: analysis.validPrefixLength, chunks: analysis.chunkCount, payloadBytes: analysis.payloadBytes),
            forKey: .validPrefix)
        switch virtiofsd {
        case .success(let state)?: try container.encode(state, forKey: .virtiofsd)
        case .failure(let error)?: try container.encode(ProblemJSON(error), forKey: .virtiofsdError)
        case nil: break
        }
        switch passt {
        case .success(let state)?: try container.encode(state, forKey: .passt)
        case .failure(let error)?: try container.encode(ProblemJSON(error), forKey: .passtError)
        case nil: break
        }
    }

    /// The report as one line of JSON.
    func jsonData() throws -> Data {
        try JSONEncoder.statetool.encode(self)
    }

    /// The report for people.
    var text: String {
        let sizes = analysis.chunkSizes
        var lines: [(String, String)] = [
            ("file", file),
            ("compression", analysis.compression == .zstd
                ? "zstd (\(analysis.compressedBytes ?? 0) compressed bytes)" : "none"),
            ("valid", valid ? "yes" : "no"),
            ("chunks", "\(analysis.chunkCount)"),
            ("payload", "\(analysis.payloadBytes) bytes (\(Format.bytes(analysis.payloadBytes)))"),
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
        switch virtiofsd {
        case .success(let state)?: lines += state.summary
        case .failure(let error)?: lines.append(("virtiofsd", "looks like a virtiofsd state but does not decode: \(error)"))
        case nil: break
        }
        switch passt {
        case .success(let state)?: lines += state.summary
        case .failure(let error)?: lines.append(("passt", "begins with passt's magic but does not decode: \(error)"))
        case nil: break
        }
        lines.append(("problems", analysis.problems.isEmpty ? "none" : "\(analysis.problems.count + analysis.omittedProblemCount)"))
        var text = lines.map { Format.padded($0.0, to: 16) + $0.1 + "\n" }.joined()
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
                text += "  " + Format.padded(range, to: 22)
                    + Format.padded(String(bucket.count), to: 10) + bar + "\n"
            }
        }
        return text
    }
}
