import ArgumentParser
import PasstState
import StateStream
import StatetoolKit
import VirtiofsdState

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare the payloads (or with --framing, the chunk layouts) of two streams.",
        discussion: """
            By default only the payloads count: QEMU's chunk boundaries are wherever a pipe read \
            returned, so the same state can be framed differently. Reports whether the payloads are \
            identical, their lengths, the first differing payload offset with the chunk and file \
            offset that hold it on each side, the differing ranges (adjacent bytes merged), and a hex \
            view around the first difference. Either side may be raw or zstd, a file or - (not both).

            --json prints one JSON object, of one of three shapes (payload, --framing, --semantic); \
            `statetool schema diff` prints its JSON Schema.

            --semantic compares two back-end states by meaning instead of bytes: each side a state \
            stream, a bare payload or a migration file (raw or zstd; its first back-end state). \
            The back-end that takes both payloads compares them. Two passt states (told by their \
            magic): the header's versions, each observed address, \
            and TCP flows matched by both sides' endpoints (added, removed, or changed field by \
            field, queues by length and digest). Two virtiofsd states: inodes are matched by path (or \
            file handle) and reported added, removed or changed (id, refcount, recorded file \
            handle); handles by id (inode path, open flags); V2's mount-path map as a set, whatever \
            its serialisation order; and the format version, next ids and negotiated options. \
            Any registered back-end's states compare the same way. A migration file side is read \
            as extract reads it: from its end where that \
            checks out (--full-walk: front to back; -v says how, and how many bytes).

            Exit status, as cmp: 0 same, 1 different, 2 trouble (an input unreadable or broken, \
            named with its problem), 64 usage error.
            """
    )

    @Flag(help: "Compare the chunk layouts (lengths, index by index) instead of the payloads.")
    var framing = false

    @Flag(help: "Compare two back-end states by meaning: virtiofsd inodes by path, handles, mount paths, settings; passt flows by endpoints, addresses.")
    var semantic = false

    @Option(help: ArgumentHelp("How many differing ranges to list.", valueName: "count"))
    var maxRanges = 16

    @Option(help: ArgumentHelp("Bytes of context to show before and after the first difference.", valueName: "bytes"))
    var context = 16

    @OptionGroup var format: JSONOption

    @OptionGroup var reading: MigrationReadingOptions

    @Argument(help: ArgumentHelp("The first stream.", valueName: "a"))
    var a: String

    @Argument(help: ArgumentHelp("The second stream.", valueName: "b"))
    var b: String

    func validate() throws {
        guard !(a == "-" && b == "-") else { throw ValidationError("Only one side can be standard input.") }
        guard !(framing && semantic) else { throw ValidationError("--framing and --semantic compare different things: pick one.") }
        guard semantic || !(reading.fullWalk || reading.verbose) else {
            throw ValidationError("--full-walk and -v are for migration files, which only --semantic reads.")
        }
        guard maxRanges >= 0 else { throw ValidationError("--max-ranges cannot be negative.") }
        guard (0...4096).contains(context) else { throw ValidationError("--context must be between 0 and 4096.") }
    }

    func run() throws {
        if semantic { return try compareSemantically() }
        let first = try CommandSupport.openStream(a, refusingWith: .unreadable)
        let second = try CommandSupport.openStream(b, refusingWith: .unreadable)
        let identical: Bool
        let analyses: (StreamAnalysis, StreamAnalysis)
        let text: String
        do {
            if framing {
                let comparison = try FramingComparison.compare(first, second)
                analyses = (comparison.a, comparison.b)
                identical = comparison.identical
                text = format.json ? try JSONText.document(StreamComparisonReport.Framing(comparison, a: a, b: b), schema: "diff") : describe(comparison)
            } else {
                let comparison = try PayloadComparison.compare(first, second, maximumRanges: maxRanges, contextLength: context)
                analyses = (comparison.a, comparison.b)
                identical = comparison.identical
                text = format.json ? try JSONText.document(StreamComparisonReport.Payload(comparison, a: a, b: b), schema: "diff") : describe(comparison)
            }
        } catch {
            throw CommandSupport.fail(error, file: "\(a) / \(b)")
        }
        let broken = [(a, analyses.0), (b, analyses.1)].filter { $0.1.error != nil }
        guard broken.isEmpty else {
            for (file, analysis) in broken { CommandSupport.reportProblems(of: analysis, file: file) }
            throw CommandFailure(.unreadable)
        }
        try StandardOutput.print(text)
        if !identical { throw CommandFailure(.invalid) }
    }

    private func compareSemantically() throws {
        // Any registered back-end's state, whichever the input holds.
        let load = { (file: String) throws -> LoadedPayload in
            let input = try CommandSupport.open(file)
            do {
                return try LoadedPayload.load(from: input, device: nil, subsection: nil, strategy: reading.strategy)
            } catch {
                throw CommandSupport.fail(error, file: file)
            }
        }
        let first = try load(a), second = try load(b)
        reading.report(first.reading, file: a)
        reading.report(second.reading, file: b)
        let comparison: SemanticComparison
        do {
            comparison = try SemanticComparison.compare((a, first.bytes, first.reading), (b, second.bytes, second.reading))
        } catch {
            if case .differentBackEnds = error { throw CommandFailure(.unreadable, "error: \(error)") }
            throw CommandFailure(.unreadable, "\(error.file): error: \(error)")
        }
        let differences = comparison.differences
        if format.json {
            try StandardOutput.printJSON(comparison, schema: "diff")
        } else {
            var lines = ["\(a) and \(b): \(comparison.backEnd) states \(differences.isEmpty ? "are the same by meaning" : "differ: \(differences.count) \(differences.count == 1 ? "difference" : "differences")")"]
            lines += differences.map { "  \($0)" }
            try StandardOutput.print(lines.joined(separator: "\n"))
        }
        if !differences.isEmpty { throw CommandFailure(.invalid) }
    }

    private func side(_ name: String, _ analysis: StreamAnalysis) -> String {
        "  \(name): \(analysis.payloadBytes) payload bytes in \(analysis.chunkCount) chunks (\(analysis.compression.rawValue))"
    }

    private func describe(_ comparison: FramingComparison) -> String {
        var lines = [
            "\(a) and \(b): chunk layouts \(comparison.identical ? "are identical" : "differ")",
            side("a", comparison.a), side("b", comparison.b),
        ]
        if let index = comparison.firstDifferingChunk {
            func chunk(_ chunk: Chunk?) -> String { chunk.map { "\($0.length) bytes at offset \($0.offset)" } ?? "none" }
            lines.append("first differing chunk: \(index): a \(chunk(comparison.chunkInA)), b \(chunk(comparison.chunkInB))")
            lines.append("\(comparison.differingChunkCount) chunk indexes differ")
        }
        return lines.joined(separator: "\n")
    }

    private func describe(_ comparison: PayloadComparison) -> String {
        var lines = [
            "\(a) and \(b): payloads \(comparison.identical ? "are identical" : "differ")",
            side("a", comparison.a), side("b", comparison.b),
        ]
        guard let offset = comparison.firstDifference else { return lines.joined(separator: "\n") }
        func location(_ location: PayloadComparison.Location?) -> String {
            location.map { "chunk \($0.chunkIndex) at file offset \($0.fileOffset)" } ?? "past its end"
        }
        lines.append("first difference at payload offset \(offset): a \(location(comparison.firstDifferenceInA)), b \(location(comparison.firstDifferenceInB))")
        let rangeCount = comparison.ranges.count + comparison.omittedRangeCount
        lines.append("\(rangeCount) differing \(rangeCount == 1 ? "range" : "ranges"), \(comparison.differingBytes) bytes:")
        for range in comparison.ranges {
            let length = range.upperBound - range.lowerBound
            lines.append("  \(range.lowerBound)..<\(range.upperBound) (\(length) \(length == 1 ? "byte" : "bytes"))")
        }
        if comparison.omittedRangeCount > 0 {
            lines.append("  ... and \(comparison.omittedRangeCount) more (--max-ranges)")
        }
        if context > 0 {
            lines.append("context (payload offsets):")
            lines += HexView.rows(comparison)
        }
        return lines.joined(separator: "\n")
    }
}
