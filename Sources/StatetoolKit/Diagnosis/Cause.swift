/// One reason a restore fails or would fail: its kind from the catalogue, the
/// device, a one-line summary and the evidence. Its `Encodable` form is
/// `{kind, device, summary, evidence}`.
public struct Cause: Hashable, Sendable, Codable {
    /// The kind, from the catalogue.
    public let kind: CauseKind
    /// The device section it is about (`0000:00:01.0/vhost-user-fs`); `nil`
    /// when nothing read names it.
    public var device: String?
    /// What is wrong, in one line.
    public var summary: String
    /// Where it shows.
    public var evidence: [Evidence]

    /// A cause from its parts.
    public init(kind: CauseKind, device: String?, summary: String, evidence: [Evidence]) {
        self.kind = kind
        self.device = device
        self.summary = summary
        self.evidence = evidence
    }

    private enum CodingKeys: String, CodingKey { case kind, device, summary, evidence }

    /// Decodes `{kind, device, summary, evidence}` (a bundle's recorded share check).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        kind = try container.decode(CauseKind.self, forKey: .kind)
        device = try container.decodeIfPresent(String.self, forKey: .device)
        summary = try container.decode(String.self, forKey: .summary)
        evidence = try container.decode([Evidence].self, forKey: .evidence)
    }

    /// Encodes `{kind, device, summary, evidence}`, `device` `null` when unknown.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kind, forKey: .kind)
        try container.encode(device, forKey: .device)
        try container.encode(summary, forKey: .summary)
        try container.encode(evidence, forKey: .evidence)
    }
}
