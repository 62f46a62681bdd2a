/// What `diagnose` concludes: the verdict, the causes with their evidence,
/// and the fix. Its `Encodable` form is `diagnose --json`.
public struct Diagnosis: Sendable, Encodable {
    /// The verdict.
    public let verdict: Verdict
    /// The causes, in the catalogue's order.
    public let causes: [Cause]
    /// What brings the VM back.
    public let fix: Fix
    /// The file diagnosed; `nil` when none was given.
    public let file: String?
    /// The device whose state was diagnosed; `nil` when nothing named it.
    public let device: String?
    /// The destination's shared directory the state was checked against; `nil` when none was known.
    public let sharedDirectory: String?
    /// What was checked, one phrase each.
    public let checked: [String]
    /// What to add to decide more, one phrase each.
    public let missing: [String]
    /// The file `diagnose --fix` wrote; `nil` when none was written.
    public var written: String?
    /// What checking the state against its share found (or, for a bundle,
    /// what was recorded); `nil` when no share was checked. Not part of the
    /// JSON: a bundle stores it as `share-check.json`.
    public var shareCheck: ShareCheckRecord?

    /// A diagnosis from its parts.
    public init(
        verdict: Verdict, causes: [Cause], fix: Fix, file: String?, device: String?, sharedDirectory: String?, checked: [String],
        missing: [String]
    ) {
        self.verdict = verdict
        self.causes = causes
        self.fix = fix
        self.file = file
        self.device = device
        self.sharedDirectory = sharedDirectory
        self.checked = checked
        self.missing = missing
    }

    private enum CodingKeys: String, CodingKey { case verdict, causes, fix, file, device, sharedDirectory, checked, missing, written }

    /// Encodes the `diagnose --json` object, absent values as `null`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(verdict, forKey: .verdict)
        try container.encode(causes, forKey: .causes)
        try container.encode(fix, forKey: .fix)
        try container.encode(file, forKey: .file)
        try container.encode(device, forKey: .device)
        try container.encode(sharedDirectory, forKey: .sharedDirectory)
        try container.encode(checked, forKey: .checked)
        try container.encode(missing, forKey: .missing)
        try container.encode(written, forKey: .written)
    }
}
