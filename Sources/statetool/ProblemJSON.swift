import StateStream

/// A finding (a problem, an inconsistency, a decoding error, a repair's
/// change) as every command's `--json` shows it: `{kind, severity, offset,
/// offsetIsCompressed, message}`, where `offsetIsCompressed` says that the
/// offset counts bytes of the zstd input rather than of the framed stream or
/// file. An offset that counts something else is named by its key instead:
/// `payloadOffset` (bytes of a back-end's payload) or `outputOffset`. What a
/// kind of finding adds (an inode `id`, `droppedBytes`) follows.
struct ProblemJSON: Encodable {
    let kind: String
    let severity: Severity
    let offset: UInt64
    let offsetBase: OffsetBase
    let message: String
    var id: UInt64?
    var droppedBytes: UInt64?

    init(_ finding: some Finding, id: UInt64? = nil, droppedBytes: UInt64? = nil) {
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

    func encode(to encoder: any Encoder) throws {
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
