import MigrationFile
import StateStream

/// The migration-file walk fed arbitrary bytes (given the `QEVM` header when
/// they do not start with a `Q`), read in varied sizes:
/// - problem offsets lie within the input;
/// - sections lie within the input, in order, without overlapping;
/// - each back-end state's subsection header is where it is reported, and the
///   stream the walk hands out is exactly the bytes of the input at its offsets;
/// - the survey and its description checks complete.
enum MigrationFileTarget {
    static func run(_ input: [UInt8]) throws {
        let bytes = input.first == UInt8(ascii: "Q") ? input : [0x51, 0x45, 0x56, 0x4D, 0, 0, 0, 3] + input
        let seed = bytes.count
        let source = ByteArraySource(bytes, readSizes: { call in (call * 13 + seed) % 997 + 1 })
        let reader = MigrationFileReader(input: try StateStreamInput(source: source))
        var survey = MigrationFileSurvey()
        var collected = CollectedStates()
        var lastSectionEnd: UInt64 = 0
        try reader.walk { event in
            survey.record(event)
            try collected.record(event)
            switch event {
            case .section(let record):
                try check(record.offset >= lastSectionEnd, "section \(record.section.id) overlaps the one before")
                lastSectionEnd = record.offset + record.byteCount
                try check(lastSectionEnd <= UInt64(bytes.count), "section \(record.section.id) runs past the input")
            case .problem(let problem) where !problem.offsetIsCompressed:
                try check(problem.offset <= UInt64(bytes.count), "\(problem) lies beyond the input")
            default:
                break
            }
        }
        survey.finish()
        try collected.checkAgainst(bytes)
    }
}
