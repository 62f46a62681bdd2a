import MigrationFile
import StateStream

/// `migration replace` fed arbitrary migration files, read in odd-sized pieces:
/// - when the first back-end state is replaced, the copy walks without error
///   and holds the new state, of the length the summary gives, where the old one was;
/// - replacing it again by the original stream gives back the input byte for byte
///   (for a raw input: the JSON description's sizes are changed and changed back);
/// - anything else fails with a ``StateReplacement/Failure`` or an input error, never a crash.
enum StateReplacementTarget {
    static let newPayload = [UInt8](repeating: 0x5A, count: 300)

    static func run(_ bytes: [UInt8]) throws {
        let first: (bytes: [UInt8], summary: StateReplacement.Summary)
        do {
            first = try replaceFirstState(in: bytes, with: .payload(ByteArraySource(newPayload), chunkSize: 128))
        } catch is StateReplacement.Failure {
            return
        } catch is InputError {
            return
        }
        let summary = first.summary
        try check(summary.newLength == UInt64(newPayload.count + 3 * 4 + 4), "the new state's length is \(summary.newLength)")
        let survey = try MigrationFileSurvey.survey(MigrationFileReader(input: StateStreamInput(source: ByteArraySource(first.bytes))))
        try check(survey.error == nil, "the copy does not walk: \(survey.error.map(String.init(describing:)) ?? "")")
        let replaced = survey.backEndStates.first { $0.location.section == summary.location.section }
        try check(replaced?.length == summary.newLength && replaced?.payloadBytes == UInt64(newPayload.count), "the copy does not hold the new state")
        try check(replaced?.location.streamOffset == summary.location.streamOffset, "the new state moved")

        guard Compression.detect(leadingBytes: bytes.prefix(Compression.magicLength)) == .none else { return }
        let start = Int(summary.location.streamOffset)
        let original = Array(bytes[start..<start + Int(summary.oldLength)])
        let back = try replaceFirstState(in: first.bytes, with: .stream(StateStreamInput(source: ByteArraySource(original))))
        try check(back.bytes == bytes, "replacing the state back does not give the input")
    }

    /// The file with its first back-end state replaced, read 997 bytes at a time.
    private static func replaceFirstState(in bytes: [UInt8], with state: ReplacementState) throws -> (bytes: [UInt8], summary: StateReplacement.Summary) {
        var seen = false
        let sink = ByteArraySink()
        let summary = try StateReplacement.replace(
            in: StateStreamInput(source: ByteArraySource(bytes, maximumReadSize: 997)), device: nil,
            selecting: { _ in
                defer { seen = true }
                return !seen
            }, with: state, to: .sink(sink))
        return (sink.bytes, summary)
    }
}
