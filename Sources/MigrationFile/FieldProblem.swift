import StateStream

/// Something wrong met while decoding a device section's fields through the
/// JSON description, located by its file offset. Each field is named by its
/// path in the section (`timer[2].config`, `/hpet/offset.hpet_offset`).
public enum FieldProblem: Finding, Hashable {
    /// The section's bytes end inside a field (the file is cut, or the
    /// description gives more than the section holds).
    case truncated(field: String, needed: UInt64, left: UInt64, at: UInt64)
    /// A subsection the description lists is not where it is due: `found`
    /// is the byte there, or `nil` at the end of the section.
    case missingSubsection(String, found: UInt8?, at: UInt64)
    /// A subsection's header names another subsection than the description's next.
    case subsectionMismatch(expected: String, found: String, at: UInt64)
    /// A field's bytes are not what its type allows: `what` says how.
    case badValue(field: String, what: String, at: UInt64)
    /// Bytes of the section follow its last described field.
    case unreadBytes(count: UInt64, at: UInt64)
    /// The section holds more values than the decoder keeps (``FieldDecoder/maximumValueCount``).
    case tooManyValues(field: String, at: UInt64)
    /// The JSON description has no entry for the section: its fields cannot be named. A warning.
    case undescribed(section: String, at: UInt64)

    /// The stable name of each kind of problem, used in messages and JSON.
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// A ``FieldProblem/truncated(field:needed:left:at:)``.
        case truncated = "field-truncated"
        /// A ``FieldProblem/missingSubsection(_:found:at:)``.
        case missingSubsection = "missing-subsection"
        /// A ``FieldProblem/subsectionMismatch(expected:found:at:)``.
        case subsectionMismatch = "subsection-mismatch"
        /// A ``FieldProblem/badValue(field:what:at:)``.
        case badValue = "bad-field-value"
        /// A ``FieldProblem/unreadBytes(count:at:)``.
        case unreadBytes = "unread-section-bytes"
        /// A ``FieldProblem/tooManyValues(field:at:)``.
        case tooManyValues = "too-many-values"
        /// A ``FieldProblem/undescribed(section:at:)``.
        case undescribed = "undescribed-section"
    }

    /// Which kind of problem this is.
    public var kind: Kind {
        switch self {
        case .truncated: return .truncated
        case .missingSubsection: return .missingSubsection
        case .subsectionMismatch: return .subsectionMismatch
        case .badValue: return .badValue
        case .unreadBytes: return .unreadBytes
        case .tooManyValues: return .tooManyValues
        case .undescribed: return .undescribed
        }
    }

    /// An error, but for ``undescribed(section:at:)``, a warning.
    public var severity: Severity {
        if case .undescribed = self { return .warning }
        return .error
    }

    /// The file offset of the problem.
    public var offset: UInt64 {
        switch self {
        case .truncated(_, _, _, let offset), .missingSubsection(_, _, let offset), .subsectionMismatch(_, _, let offset),
            .badValue(_, _, let offset), .unreadBytes(_, let offset), .tooManyValues(_, let offset), .undescribed(_, let offset):
            return offset
        }
    }

    /// Always ``OffsetBase/input``: bytes of the (decompressed) migration file.
    public var offsetBase: OffsetBase { .input }

    /// What is wrong, in one sentence without the offset.
    public var message: String {
        switch self {
        case .truncated(let field, let needed, let left, _):
            return "field \(field) takes \(needed) bytes, the section has \(left) left"
        case .missingSubsection(let name, let found, _):
            let what = found.map { "byte 0x\(String($0, radix: 16))" } ?? "the section's end"
            return "subsection \(name) expected (0x05), \(what) found"
        case .subsectionMismatch(let expected, let found, _):
            return "subsection \(expected) expected, the file names \(found)"
        case .badValue(let field, let what, _):
            return "field \(field): \(what)"
        case .unreadBytes(let count, _):
            return "\(count) bytes of the section follow its last described field"
        case .tooManyValues(let field, _):
            return "field \(field): more than \(FieldDecoder.maximumValueCount) values in one section; decoding stops"
        case .undescribed(let section, _):
            return "the JSON description has no entry for section \(section): its fields are not decoded"
        }
    }
}
