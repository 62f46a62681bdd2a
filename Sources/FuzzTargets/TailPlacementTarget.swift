import MigrationFile
import StateStream
import SystemCalls
import SystemPackage

/// Reading from the end against reading every byte, on arbitrary bytes (given
/// the `QEVM` header when they do not start with a `Q`) written to a regular
/// file:
/// - each state the tail path hands out is exactly the input's bytes at the
///   offsets it reports, after the header it reports;
/// - where the tail path was taken and the walk, record by record, came to
///   the offset where the tail path resumed (so both agree on what lies
///   before it), every state the tail path found the full walk finds too, at
///   the same offsets with the same bytes, unless the walk stopped with an
///   error before it; and every problem it reports the walk reports too, under
///   the same condition (a size mismatch, which has no offset: if the walk got
///   to the end). Where the walk's records run across that offset instead (a
///   RAM section cut short, say), the file is broken before the placed
///   sections, and the tail path, which never reads there, answers from the
///   description alone;
/// - where it was not taken, both read the same: the same states and problems.
enum TailPlacementTarget {
    /// What one reading saw.
    private struct Seen {
        var collected = CollectedStates()
        var problems: [MigrationProblem] = []
        var reading: MigrationReading?
        /// The offsets at which records (sections, commands, the EOF marker) start.
        var recordOffsets: Set<UInt64> = []

        var states: [(location: BackEndStateLocation, bytes: [UInt8])] { collected.states }
    }

    static func run(_ input: [UInt8]) throws {
        let bytes = input.first == UInt8(ascii: "Q") ? input : [0x51, 0x45, 0x56, 0x4D, 0, 0, 0, 3] + input
        // An unnamed file (nothing to clean up), read through a descriptor of its own.
        let written = try Files.openUnnamedTemporary(in: "/tmp")
        _ = try bytes.withUnsafeBytes { try written.descriptor.writeAll($0) }
        let reading = OwnedDescriptor(taking: try FileDescriptor.open("/proc/self/fd/\(written.descriptor.rawValue)", .readOnly))
        let file = reading.descriptor
        let tail = try read(file, strategy: .placeFromEnd)
        let walk = try read(file, strategy: .fullWalk)
        try tail.collected.checkAgainst(bytes)
        guard tail.reading?.path == .tail else {
            try check(tail.states.map { $0.bytes } == walk.states.map { $0.bytes } && tail.problems == walk.problems,
                "a walk that fell back reads otherwise than a walk asked for")
            return
        }
        guard let resumed = tail.reading?.resumedAt, walk.recordOffsets.contains(resumed) else { return }
        // Where the full walk stopped early, it saw nothing after that offset.
        let walkEnd = walk.problems.first { $0.severity == .error }?.offset ?? .max
        for state in tail.states where state.location.sectionOffset < walkEnd {
            try check(walk.states.contains { $0.location == state.location && $0.bytes == state.bytes },
                "the tail path found a state at \(state.location.streamOffset) the walk did not")
        }
        for problem in tail.problems where !walk.problems.contains(problem) {
            // A size mismatch has no offset: the walk checks it only if it got to the end.
            let seenByWalk = problem.kind == MigrationProblem.Kind.descriptionMismatch ? walkEnd == .max : problem.offset < walkEnd
            try check(!seenByWalk, "the tail path reports \(problem), the walk does not")
        }
    }

    private static func read(_ file: FileDescriptor, strategy: ReadingStrategy) throws -> Seen {
        _ = try file.seek(offset: 0, from: .start)
        let reader = MigrationFileReader(
            input: try StateStreamInput(source: FileDescriptorSource(file, closesOnDeinit: false)), strategy: strategy)
        var seen = Seen()
        var survey = MigrationFileSurvey()
        try reader.walk { event in
            survey.record(event)
            try seen.collected.record(event)
            switch event {
            case .section(let record): seen.recordOffsets.insert(record.offset)
            case .command(let command): seen.recordOffsets.insert(command.offset)
            case .endOfFile(let offset): seen.recordOffsets.insert(offset)
            default: break
            }
        }
        survey.finish()
        seen.problems = survey.problems
        seen.reading = reader.reading
        return seen
    }
}
