import MigrationFile
import StateStream

/// Two back-end states compared by meaning (`diff --semantic`): inodes by
/// path, handles by id, flows by their endpoints, whichever back-end holds
/// them. Its `Encodable` form is the `diff --semantic --json` object.
public struct SemanticComparison: Encodable, Sendable {
    /// The first input as the user named it.
    public let a: String
    /// The second input as the user named it.
    public let b: String
    /// The back-end both states are of (`BackEndFormat.name`).
    public let backEnd: String
    /// The differences, in order; empty when the states mean the same.
    public let differences: [StateDifference]
    /// How each side was read, when it is a migration file.
    public let readings: Readings

    /// How each side of a comparison was read: `nil` for an input that is no
    /// migration file.
    public struct Readings: Encodable, Sendable {
        /// The first input's reading.
        public let a: MigrationReading?
        /// The second input's reading.
        public let b: MigrationReading?

        /// Encodes both keys, `null` where a side is no migration file.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(a, forKey: .a)
            try container.encode(b, forKey: .b)
        }

        private enum CodingKeys: String, CodingKey { case a, b }
    }

    /// Whether the states mean the same.
    public var identical: Bool { differences.isEmpty }

    /// Why two payloads cannot be compared by meaning.
    public enum Failure: Error, Sendable, CustomStringConvertible {
        /// No registered back-end takes the payload of `file` as its own.
        case unknownPayload(file: String, backEnds: [String])
        /// The payload of `file` begins like `backEnd`'s but does not decode.
        case undecodable(file: String, backEnd: String, BackEndDecodingFailure)
        /// The two payloads are states of two back-ends.
        case differentBackEnds(a: (file: String, backEnd: String), b: (file: String, backEnd: String))

        /// The input the failure is about (the first, for two back-ends).
        public var file: String {
            switch self {
            case .unknownPayload(let file, _), .undecodable(let file, _, _): return file
            case .differentBackEnds(let a, _): return a.file
            }
        }

        /// What is wrong, without the file name in front.
        public var description: String {
            switch self {
            case .unknownPayload(_, let backEnds):
                return "not the state of a back-end statetool knows (\(backEnds.joined(separator: ", ")))"
            case .undecodable(_, let backEnd, let failure):
                return "not a \(backEnd) state: \(failure)"
            case .differentBackEnds(let a, let b):
                return "\(a.file) holds a \(a.backEnd) state and \(b.file) a \(b.backEnd) state: states of two back-ends cannot be compared"
            }
        }
    }

    /// Compares the payloads `a` and `b` (each held whole, as loaded from
    /// whatever held it) by meaning, through the back-end that takes them.
    public static func compare(
        _ a: (file: String, payload: [UInt8], reading: MigrationReading?),
        _ b: (file: String, payload: [UInt8], reading: MigrationReading?)
    ) throws(Failure) -> SemanticComparison {
        let first = try decode(a.payload, file: a.file)
        let second = try decode(b.payload, file: b.file)
        guard let differences = first.state.differences(to: second.state) else {
            throw .differentBackEnds(a: (a.file, first.backEnd), b: (b.file, second.backEnd))
        }
        return SemanticComparison(
            a: a.file, b: b.file, backEnd: first.backEnd, differences: differences, readings: Readings(a: a.reading, b: b.reading))
    }

    private static func decode(_ payload: [UInt8], file: String) throws(Failure) -> (backEnd: String, state: any DecodedBackEndState) {
        guard let recognized = PayloadRecognition.recognize(payload) else {
            throw .unknownPayload(file: file, backEnds: BackEnds.all.map(\.name))
        }
        switch recognized.result {
        case .success(let state): return (recognized.backEnd, state)
        case .failure(let failure): throw .undecodable(file: file, backEnd: recognized.backEnd, failure)
        }
    }

    private enum CodingKeys: String, CodingKey {
        case a, b, backEnd, identical, differences, readings
    }

    /// Encodes the `diff --semantic --json` object.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(a, forKey: .a)
        try container.encode(b, forKey: .b)
        try container.encode(backEnd, forKey: .backEnd)
        try container.encode(identical, forKey: .identical)
        try container.encode(differences, forKey: .differences)
        try container.encode(readings, forKey: .readings)
    }
}
