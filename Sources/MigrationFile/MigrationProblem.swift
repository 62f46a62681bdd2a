import StateStream

/// Something wrong with a migration file, located by its offset in the
/// (decompressed) file.
public enum MigrationProblem: Finding, Hashable {
    /// The file does not start with `QEVM` (where it starts: 0, or after a
    /// container's header).
    case notAMigrationFile(at: UInt64)
    /// The header names a version other than 3.
    case unsupportedVersion(UInt32, at: UInt64)
    /// The file ends inside something: `what` names it.
    case truncated(at: UInt64, inside: String)
    /// A record starts with a byte that is no record type.
    case unknownRecordType(UInt8, at: UInt64)
    /// A PART or END section names a section id no START opened.
    case unknownSectionID(UInt32, at: UInt64)
    /// A section's footer is missing or names another section.
    case badFooter(sectionID: UInt32, at: UInt64)
    /// Something statetool cannot parse: the walk stops here.
    case unsupported(String, at: UInt64)
    /// A record is malformed: `what` says how.
    case malformed(String, at: UInt64)
    /// The embedded state stream of a device is broken. The problem's own offset
    /// counts bytes of the stream; `streamOffset` is where the stream starts in
    /// the file.
    case stateStream(device: String, StreamProblem, streamOffset: UInt64)
    /// The JSON description gives another size than what the file holds.
    case descriptionMismatch(device: String, what: String, described: UInt64, actual: UInt64)
    /// The JSON description after the EOF marker cannot be read.
    case badDescription(String, at: UInt64)
    /// No JSON description follows the EOF marker: the file was written with
    /// `suppress-vmdesc`, or cut right after the marker. A warning.
    case noDescription(at: UInt64)
    /// Bytes follow the end of the file's content.
    case trailingData(at: UInt64, byteCount: UInt64)
    /// The zstd layer around the file is broken (offset in the compressed input).
    case compressionError(CompressionFailure)

    /// The stable name of each kind of problem, used in messages and JSON.
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// A ``MigrationProblem/notAMigrationFile(at:)``.
        case notAMigrationFile = "not-a-migration-file"
        /// A ``MigrationProblem/unsupportedVersion(_:at:)``.
        case unsupportedVersion = "unsupported-version"
        /// A ``MigrationProblem/truncated(at:inside:)``.
        case truncated = "truncated-file"
        /// A ``MigrationProblem/unknownRecordType(_:at:)``.
        case unknownRecordType = "unknown-record-type"
        /// A ``MigrationProblem/unknownSectionID(_:at:)``.
        case unknownSectionID = "unknown-section-id"
        /// A ``MigrationProblem/badFooter(sectionID:at:)``.
        case badFooter = "bad-footer"
        /// A ``MigrationProblem/unsupported(_:at:)``.
        case unsupported = "unsupported"
        /// A ``MigrationProblem/malformed(_:at:)``.
        case malformed = "malformed-record"
        /// A ``MigrationProblem/stateStream(device:_:streamOffset:)``.
        case stateStream = "state-stream"
        /// A ``MigrationProblem/descriptionMismatch(device:what:described:actual:)``.
        case descriptionMismatch = "description-mismatch"
        /// A ``MigrationProblem/badDescription(_:at:)``.
        case badDescription = "bad-description"
        /// A ``MigrationProblem/noDescription(at:)``.
        case noDescription = "no-description"
        /// A ``MigrationProblem/trailingData(at:byteCount:)``.
        case trailingData = "trailing-data"
        /// A ``MigrationProblem/compressionError(_:)``.
        case compressionError = "compression-error"
    }

    /// Which kind of problem this is.
    public var kind: Kind {
        switch self {
        case .notAMigrationFile: return .notAMigrationFile
        case .unsupportedVersion: return .unsupportedVersion
        case .truncated: return .truncated
        case .unknownRecordType: return .unknownRecordType
        case .unknownSectionID: return .unknownSectionID
        case .badFooter: return .badFooter
        case .unsupported: return .unsupported
        case .malformed: return .malformed
        case .stateStream: return .stateStream
        case .descriptionMismatch: return .descriptionMismatch
        case .badDescription: return .badDescription
        case .noDescription: return .noDescription
        case .trailingData: return .trailingData
        case .compressionError: return .compressionError
        }
    }

    /// Whether the file is broken (`error`) or only unusual (`warning`).
    /// A warning state-stream problem (an oversized chunk) stays a warning.
    public var severity: Severity {
        switch self {
        case .noDescription: return .warning
        case .stateStream(_, let problem, _): return problem.severity
        default: return .error
        }
    }

    /// The problem's offset in the migration file (for a compressed file, in
    /// its decompressed bytes; for a broken zstd layer, in the compressed input).
    public var offset: UInt64 {
        switch self {
        case .notAMigrationFile(let offset), .unsupportedVersion(_, let offset), .truncated(let offset, _),
            .unknownRecordType(_, let offset), .unknownSectionID(_, let offset),
            .badFooter(_, let offset), .unsupported(_, let offset), .malformed(_, let offset),
            .badDescription(_, let offset), .noDescription(let offset), .trailingData(let offset, _):
            return offset
        case .stateStream(_, let problem, let streamOffset):
            return problem.offsetIsCompressed ? problem.offset : streamOffset + problem.offset
        case .descriptionMismatch:
            return 0
        case .compressionError(let failure):
            return failure.frameOffset
        }
    }

    /// The file, or for a broken zstd layer the compressed input.
    public var offsetBase: OffsetBase {
        switch self {
        case .compressionError: return .compressedInput
        case .stateStream(_, let problem, _): return problem.offsetBase
        default: return .input
        }
    }

    /// Whether ``offset`` counts bytes of the compressed input.
    public var offsetIsCompressed: Bool { offsetBase == .compressedInput }

    /// What is wrong, in one sentence without the offset.
    public var message: String {
        switch self {
        case .notAMigrationFile:
            return "no QEVM magic: not a QEMU migration file"
        case .unsupportedVersion(let version, _):
            return "file version \(version); only version \(MigrationFormat.version) is known"
        case .truncated(_, let what):
            return "file ends inside \(what)"
        case .unknownRecordType(let type, _):
            return "byte 0x\(String(type, radix: 16)) where a section, command or EOF marker was due"
        case .unknownSectionID(let id, _):
            return "section id \(id) continues a section that was never started"
        case .badFooter(let id, _):
            return "section footer 7e + be32 \(id) expected"
        case .unsupported(let what, _), .malformed(let what, _), .badDescription(let what, _):
            return what
        case .stateStream(let device, let problem, _):
            return "\(device): \(problem.kind.rawValue) at stream offset \(problem.offset): \(problem.message)"
        case .descriptionMismatch(let device, let what, let described, let actual):
            return "\(device): the JSON description gives \(what) \(described) bytes, the file holds \(actual)"
        case .noDescription:
            return "no JSON description after the EOF marker (cut off, or written with suppress-vmdesc): sizes not cross-checked"
        case .trailingData(_, let count):
            return "\(count) bytes follow the end of the migration data"
        case .compressionError(let failure):
            return failure.description
        }
    }

    /// `kind at offset N: message`, as every finding; a mismatch between the
    /// description and the file has no one offset: `kind: message`.
    public var description: String {
        if case .descriptionMismatch = self { return "\(kind.rawValue): \(message)" }
        return "\(kind.rawValue) at \(offsetBase.phrase) \(offset): \(message)"
    }
}
