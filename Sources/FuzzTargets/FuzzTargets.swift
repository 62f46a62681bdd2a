/// A broken invariant: what a fuzz target checked and found false.
public struct InvariantViolation: Error, CustomStringConvertible {
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
        public let name: String
        public let run: @Sendable ([UInt8]) throws -> Void
    }

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
    ]

    public static func named(_ name: String) -> Target? {
        all.first { $0.name == name }
    }
}
