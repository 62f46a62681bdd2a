import MigrationFile
import StateStream

/// A broken invariant: what a fuzz target checked and found false.
public struct InvariantViolation: Error, CustomStringConvertible {
    /// What was checked and found false, in one sentence.
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// Throws an ``InvariantViolation`` unless `condition` holds.
func check(_ condition: Bool, _ what: @autoclosure () -> String) throws(InvariantViolation) {
    if !condition { throw InvariantViolation(what()) }
}

/// Feeds `bytes` to `feed` in pieces of 1, 2, 3, ... bytes, as a payload
/// streams by in reads of no fixed size.
func inGrowingPieces(_ bytes: [UInt8], _ feed: (ArraySlice<UInt8>) -> Void) {
    var start = 0
    var size = 1
    while start < bytes.count {
        feed(bytes[start..<min(bytes.count, start + size)])
        start += size
        size += 1
    }
}

/// The fuzz targets: each feeds arbitrary bytes to one of statetool's readers
/// and checks what it reports, not only that it survives. libFuzzer runs them
/// (`Fuzz/`, `Scripts/fuzz`), and the test suite replays their corpora
/// (`Fuzz/Corpus/NAME`) so a found input that once failed fails `swift test`.
public enum FuzzTargets {
    /// A target: its name (also its corpus folder) and its check.
    public struct Target: Sendable {
        /// The target's name, as `Scripts/fuzz` and the corpus folder spell it.
        public let name: String
        /// Feeds one input to the target and checks what it reports. Any error
        /// thrown is a finding (an ``InvariantViolation`` when a check fails).
        public let run: @Sendable ([UInt8]) throws -> Void
    }

    /// Every target, in the order `Scripts/fuzz` runs them.
    public static let all: [Target] = [
        Target(name: "StateStreamReader", run: { try StateStreamReaderTarget.run($0) }),
        Target(name: "ZstdStream", run: { try ZstdStreamTarget.run($0) }),
        Target(name: "VhostUserMessages", run: { try VhostUserMessagesTarget.run($0) }),
        Target(name: "MigrationFile", run: { try MigrationFileTarget.run($0) }),
        Target(name: "VirtiofsdState", run: { try VirtiofsdStateTarget.run($0) }),
        Target(name: "StateReplacement", run: { try StateReplacementTarget.run($0) }),
        Target(name: "PasstState", run: { try PasstStateTarget.run($0) }),
        Target(name: "SaveImage", run: { try SaveImageTarget.run($0) }),
        Target(name: "TailPlacement", run: { try TailPlacementTarget.run($0) }),
        Target(name: "FieldDecoder", run: { try FieldDecoderTarget.run($0) }),
    ]

    /// The target called `name`, or `nil` if there is none.
    public static func named(_ name: String) -> Target? {
        all.first { $0.name == name }
    }
}

/// The back-end states a migration walk hands out, framed again as the file
/// holds them, each with where it was reported.
struct CollectedStates {
    private(set) var states: [(location: BackEndStateLocation, bytes: [UInt8])] = []
    private var current: [UInt8] = []

    /// Takes the state events of `event`; a state whose reported length
    /// differs from its bytes breaks an invariant.
    mutating func record(_ event: MigrationEvent) throws {
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
            states.append((location, current))
        default:
            break
        }
    }

    /// Checks that each state is the bytes of `input` at its offsets, after the header it reports.
    func checkAgainst(_ input: [UInt8]) throws {
        for (location, stream) in states {
            let header = location.subsection.header
            let headerStart = Int(location.headerOffset), start = Int(location.streamOffset)
            try check(headerStart + header.count == start, "the stream does not follow its subsection header")
            try check(start + stream.count <= input.count, "a state runs past the input")
            try check(Array(input[headerStart..<start]) == header, "no subsection header where one is reported")
            try check(Array(input[start..<start + stream.count]) == stream, "a state differs from the input's bytes")
        }
    }
}
