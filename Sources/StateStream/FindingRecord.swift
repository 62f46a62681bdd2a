/// A finding (a problem, an inconsistency, a decoding error, a repair's
/// change) as every command's `--json` shows it: `{kind, severity, offset,
/// offsetIsCompressed, message}`, where `offsetIsCompressed` says that the
/// offset counts bytes of the zstd input rather than of the framed stream or
/// file. An offset that counts something else is named by its key instead:
/// `payloadOffset` (bytes of a back-end's payload) or `outputOffset`. What a
/// kind of finding adds (an inode `id`, `droppedBytes`) follows.
public struct FindingRecord: Encodable, Sendable {
    /// The finding's stable kebab-case kind.
    public let kind: String
    /// How bad it is.
    public let severity: Severity
    /// Where it is, counted in ``offsetBase``.
    public let offset: UInt64
    /// What ``offset`` counts; it names the JSON key the offset goes under.
    public let offsetBase: OffsetBase
    /// What is wrong, without the offset.
    public let message: String
    /// The id of the inode or handle the finding is about, for kinds that have one.
    public var id: UInt64?
    /// The bytes a repair dropped, for its changes.
    public var droppedBytes: UInt64?

    /// The record of `finding`, with what its kind adds.
    public init(_ finding: some Finding, id: UInt64? = nil, droppedBytes: UInt64? = nil) {
        kind = finding.kind.rawValue
        severity = finding.severity
        offset = finding.offset
        offsetBase = finding.offsetBase
        message = finding.message
        self.id = id
        self.droppedBytes = droppedBytes
    }

    private enum Key: String, CodingKey {
        case kind, severity, offset, offsetIsCompressed, payloadOffset, outputOffset, message, id, droppedBytes
    }

    /// Encodes the one JSON shape of a finding.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(kind, forKey: .kind)
        try container.encode(severity, forKey: .severity)
        switch offsetBase {
        case .input, .compressedInput:
            try container.encode(offset, forKey: .offset)
            try container.encode(offsetBase == .compressedInput, forKey: .offsetIsCompressed)
        case .payload:
            try container.encode(offset, forKey: .payloadOffset)
        case .output:
            try container.encode(offset, forKey: .outputOffset)
        }
        try container.encode(message, forKey: .message)
        try container.encodeIfPresent(id, forKey: .id)
        try container.encodeIfPresent(droppedBytes, forKey: .droppedBytes)
    }
}
