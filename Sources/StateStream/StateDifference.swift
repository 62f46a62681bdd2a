/// One difference between two back-end states by meaning, as `diff
/// --semantic` reports it: what (a subject each back-end's decoder names),
/// its key, and what changed.
public struct StateDifference: Hashable, Sendable, Encodable, CustomStringConvertible {
    /// How the item named by ``key`` differs.
    public enum Change: String, Hashable, Sendable, Codable {
        /// In the second state only (`+`), in the first only (`-`), or in both
        /// but different (`~`).
        case added, removed, changed
    }

    /// What kind of thing differs: ``field`` for every back-end, the others
    /// named by each back-end's decoder (a virtiofsd inode, a passt flow).
    public struct Subject: RawRepresentable, Hashable, Sendable, Codable {
        /// The subject's name, as JSON output spells it (`field`, `inode`).
        public let rawValue: String
        /// The subject named `rawValue`.
        public init(rawValue: String) { self.rawValue = rawValue }

        /// A setting of the state as a whole: a version, a next id, an option.
        public static let field = Self(rawValue: "field")
    }

    /// What kind of thing differs.
    public let subject: Subject
    /// Whether it was added, removed or changed.
    public let change: Change
    /// What is compared: a path, a handle id, a flow's endpoints, a field name.
    public let key: String
    /// What differs, e.g. `refcount 23 -> 24`, or what was added or removed.
    public let detail: String

    /// A difference of `subject` `key`.
    public init(subject: Subject, change: Change, key: String, detail: String) {
        self.subject = subject
        self.change = change
        self.key = key
        self.detail = detail
    }

    /// `sign subject key: detail`, the sign `+`, `-` or `~` for added,
    /// removed or changed: `~ inode /a/b: refcount 23 -> 24`.
    public var description: String {
        let sign = change == .added ? "+" : change == .removed ? "-" : "~"
        return "\(sign) \(subject.rawValue) \(key): \(detail)"
    }
}
