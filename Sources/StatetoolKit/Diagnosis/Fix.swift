import VirtiofsdState

/// What brings the VM back: a rewrite of the file (the exact command), a
/// change on the destination (its arguments), or nothing. Its `Encodable` form
/// is `{kind, command, destinationArgs, explanation}`.
public struct Fix: Hashable, Sendable, Encodable {
    /// What kind of change.
    public enum Kind: String, Hashable, Sendable, Encodable {
        /// Rewrite the file (`statetool retarget ...`, or `diagnose --fix`).
        case rewrite
        /// Start the destination differently.
        case destination
        /// Nothing to do, or nothing that can be done.
        case none
    }

    /// What kind of change.
    public let kind: Kind
    /// The command that rewrites the file, as its arguments; `nil` unless `kind` is `rewrite`.
    public let command: [String]?
    /// The arguments the destination needs (virtiofsd's, or QEMU's device
    /// property `queue-size=N`); `nil` unless `kind` is `destination`.
    public let destinationArgs: [String]?
    /// What to do and why, in a sentence or two.
    public let explanation: String
    /// The rewrite `command` runs, for `diagnose --fix`; `nil` unless `kind` is `rewrite`.
    public let request: RetargetRequest?

    /// A fix from its parts.
    public init(kind: Kind, command: [String]? = nil, destinationArgs: [String]? = nil, explanation: String, request: RetargetRequest? = nil) {
        self.kind = kind
        self.command = command
        self.destinationArgs = destinationArgs
        self.explanation = explanation
        self.request = request
    }

    private enum CodingKeys: String, CodingKey { case kind, command, destinationArgs, explanation }

    /// Encodes `{kind, command, destinationArgs, explanation}`, absent values as `null`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kind, forKey: .kind)
        try container.encode(command, forKey: .command)
        try container.encode(destinationArgs, forKey: .destinationArgs)
        try container.encode(explanation, forKey: .explanation)
    }
}
