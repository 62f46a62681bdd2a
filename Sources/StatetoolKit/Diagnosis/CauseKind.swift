/// The catalogue of causes `diagnose` names: each kind's stable kebab-case
/// name, and what it takes to bring the VM back.
public enum CauseKind: String, Hashable, Sendable, Codable, CaseIterable {
    /// Inodes of the state no longer exist in the share (or their parent does
    /// not): `retarget --drop-missing`.
    case missingPaths = "missing-paths"
    /// A missing directory exists elsewhere in the share with the same
    /// entries: `retarget --rename OLD=NEW`.
    case movedPaths = "moved-paths"
    /// An inode's file handle differs from the one the source recorded
    /// (`--migration-verify-handles` onto a copy): `retarget --strip-file-handles`.
    case fileHandleDiffers = "file-handle-differs"
    /// A file-handles-mode state restored onto a copy of its share resolves to
    /// the original files.
    case fileHandleOutsideShare = "file-handle-outside-share"
    /// A file-handle inode cannot be opened: the destination virtiofsd lacks
    /// `CAP_DAC_READ_SEARCH` (`--modcaps=+dac_read_search`).
    case fileHandleCapability = "file-handle-capability"
    /// An open file cannot be reopened with its flags (it became a directory,
    /// is immutable, is now a symbolic link): `retarget --drop-missing`.
    case handleReopenFailed = "handle-reopen-failed"
    /// A parent's refcount runs out as its children load: the loader leaves
    /// inodes unresolved; nothing in the share changes that.
    case refcountDrained = "refcount-drained"
    /// The destination virtiofsd runs out of descriptors: `--rlimit-nofile`.
    case descriptorLimit = "descriptor-limit"
    /// The source negotiated an option the destination has disabled.
    case optionMismatch = "option-mismatch"
    /// A virtqueue longer than the destination device's `queue-size`.
    case virtqueueSize = "virtqueue-size"
    /// The destination back-end lacks device-state support.
    case backendWithoutMigration = "backend-without-migration"
    /// The file ends before its state does.
    case truncatedFile = "truncated-file"
    /// The state itself is broken: it contradicts itself or does not decode.
    case damagedState = "damaged-state"
    /// Almost nothing of the state exists in the share: a wrong directory.
    case wrongShare = "wrong-share"
    /// passt refused its state.
    case passtStateRejected = "passt-state-rejected"
    /// The restore failed and nothing read says why.
    case unknown

    /// What bringing the VM back with this cause takes.
    public var remedy: Verdict {
        switch self {
        case .missingPaths, .movedPaths, .fileHandleDiffers, .handleReopenFailed, .fileHandleOutsideShare: return .fixable
        case .descriptorLimit, .optionMismatch, .virtqueueSize, .backendWithoutMigration, .wrongShare, .passtStateRejected,
            .fileHandleCapability:
            return .destination
        case .refcountDrained, .truncatedFile, .damagedState: return .unrecoverable
        case .unknown: return .unknown
        }
    }
}

/// What `diagnose` concludes, worst first in ``Verdict/allCases`` order of precedence.
public enum Verdict: String, Hashable, Sendable, Encodable, CaseIterable {
    /// Nothing predicts a failure.
    case restorable
    /// A rewrite of the file brings the VM back.
    case fixable
    /// The destination must change.
    case destination
    /// Nothing brings the state back as it was.
    case unrecoverable
    /// What was given does not decide it.
    case unknown
}
