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
        var streams: [(BackEndStateLocation, [UInt8])] = []
        var current: [UInt8] = []
        var lastSectionEnd: UInt64 = 0
        try reader.walk { event in
            survey.record(event)
            switch event {
            case .backEndStateStart:
                current = []
            case .backEndState(.chunkStart(let chunk)):
                current += StateStreamWriter.lengthField(chunk.length)
            case .backEndState(.payload(let piece)):
                current += piece
            case .backEndState(.terminator):
                current += StateStreamFormat.terminator
            case .backEndStateEnd(let location, let length):
                try check(UInt64(current.count) == length, "a state's length differs from its bytes")
                streams.append((location, current))
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
        for (location, stream) in streams {
            let header = location.subsection.header
            let headerStart = Int(location.headerOffset), start = Int(location.streamOffset)
            try check(headerStart + header.count == start, "the stream does not follow its subsection header")
            try check(start + stream.count <= bytes.count, "a state runs past the input")
            try check(Array(bytes[headerStart..<start]) == header, "no subsection header where one is reported")
            try check(Array(bytes[start..<start + stream.count]) == stream, "a state differs from the input's bytes")
        }
    }
}
