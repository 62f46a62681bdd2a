/// What checking a state against its share found, kept so that a diagnosis
/// can be made again without the share: the causes the check named (with
/// their evidence: failing inode ids and reasons) and what the fix needs
/// from it. A forensic bundle stores it (pseudonymised) as
/// `share-check.json`, and `diagnose BUNDLE` uses it instead of checking a
/// share the bundle does not hold.
public struct ShareCheckRecord: Hashable, Sendable, Codable {
    /// A missing path found elsewhere in the share (`--rename OLD=NEW`).
    public struct Rename: Hashable, Sendable, Codable {
        /// The path the state holds.
        public var old: String
        /// Where the share holds it now.
        public var new: String

        /// A rename from its parts.
        public init(old: String, new: String) {
            self.old = old
            self.new = new
        }
    }

    /// One inode or open handle the check found failing: its id, its path
    /// in the share and why.
    public struct Failure: Hashable, Sendable, Codable {
        /// The inode's or handle's id.
        public var id: UInt64
        /// Its path relative to the share.
        public var path: String
        /// Why it fails, as preflight says it.
        public var reason: String

        /// A failure from its parts.
        public init(id: UInt64, path: String, reason: String) {
            self.id = id
            self.path = path
            self.reason = reason
        }
    }

    /// The most failing inodes and handles recorded each (a count says how many there were).
    public static let maximumFailures = 10_000

    /// The shared directory checked.
    public var sharedDirectory: String
    /// The failing inodes, in the state's order (at most ``maximumFailures``).
    public var failingInodes: [Failure] = []
    /// How many inodes failed.
    public var failingInodeCount = 0
    /// The failing open handles, in the state's order (at most ``maximumFailures``).
    public var failingHandles: [Failure] = []
    /// How many open handles failed.
    public var failingHandleCount = 0
    /// The causes the check named.
    public var causes: [Cause]
    /// What was checked, one phrase each.
    public var checked: [String]
    /// Missing directories found elsewhere in the share.
    public var renames: [Rename]
    /// Negotiated options the destination must enable.
    public var options: [String]
    /// Descriptors the load takes for the guest.
    public var descriptorsNeeded: UInt64
    /// The destination's `--thread-pool-size`.
    public var threadPoolSize: UInt64
    /// The directory file-handle inodes resolve under, outside the share.
    public var handlesToPaths: String?
    /// The files outside the share that file handles open, as the causes
    /// name them (at most 10); `nil` in bundles written before they were kept.
    public var outsidePaths: [String]?

    /// A record from what a check found.
    init(sharedDirectory: String, causes: CauseList, remedies: Remedies, checked: [String]) {
        self.sharedDirectory = sharedDirectory
        self.causes = causes.causes
        self.checked = checked
        renames = remedies.renames.map { Rename(old: $0.old, new: $0.new) }
        options = remedies.options.sorted()
        descriptorsNeeded = remedies.descriptorsNeeded
        threadPoolSize = remedies.threadPoolSize
        handlesToPaths = remedies.handlesToPaths
        outsidePaths = remedies.outsidePaths.isEmpty ? nil : remedies.outsidePaths
    }

    /// The remedies it records.
    var remedies: Remedies {
        var remedies = Remedies()
        remedies.renames = renames.map { ($0.old, $0.new) }
        remedies.options = Set(options)
        remedies.descriptorsNeeded = descriptorsNeeded
        remedies.threadPoolSize = threadPoolSize
        remedies.handlesToPaths = handlesToPaths
        return remedies
    }

    /// The record with every string passed through `rename` (pseudonyms).
    public func mapped(_ rename: (String) -> String) -> ShareCheckRecord {
        var copy = self
        copy.sharedDirectory = rename(sharedDirectory)
        copy.causes = causes.map { $0.mapped(rename) }
        copy.failingInodes = failingInodes.map { Failure(id: $0.id, path: rename($0.path), reason: rename($0.reason)) }
        copy.failingHandles = failingHandles.map { Failure(id: $0.id, path: rename($0.path), reason: rename($0.reason)) }
        copy.checked = checked.map(rename)
        copy.renames = renames.map { Rename(old: rename($0.old), new: rename($0.new)) }
        copy.handlesToPaths = handlesToPaths.map(rename)
        copy.outsidePaths = outsidePaths?.map(rename)
        return copy
    }
}

extension Cause {
    /// The cause with its summary and evidence passed through `rename`.
    public func mapped(_ rename: (String) -> String) -> Cause {
        Cause(kind: kind, device: device, summary: rename(summary), evidence: evidence.map { $0.mapped(rename) })
    }
}

extension Evidence {
    /// The evidence with its path and text passed through `rename`.
    public func mapped(_ rename: (String) -> String) -> Evidence {
        Evidence(source: source, path: path.map(rename), line: line, offset: offset, text: rename(text))
    }
}
