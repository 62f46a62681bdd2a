/// Where each inode of a state is, as a path relative to the shared directory:
/// parent chains followed up to the root.
public struct InodePaths: Sendable {
    /// What an inode's location comes to.
    public enum Resolution: Hashable, Sendable {
        /// A path relative to the shared directory (`.` for the root).
        case path(String)
        /// A file handle: no path in the state.
        case fileHandle(VirtiofsdState.FileHandle)
        /// The source sent the inode as invalid.
        case invalid
        /// Its parent chain loops, or names an inode the state does not hold.
        case unresolved
    }

    /// By inode id.
    public let resolutions: [UInt64: Resolution]

    /// Follows every inode's parent chain in `state`.
    public init(_ state: VirtiofsdState) {
        var byID: [UInt64: VirtiofsdState.Inode] = [:]
        for inode in state.inodes where byID[inode.id] == nil { byID[inode.id] = inode }
        var resolved: [UInt64: Resolution] = [:]
        for inode in state.inodes where resolved[inode.id] == nil {
            // Walk up until a resolved inode, a non-path location or a repeat.
            var chain: [VirtiofsdState.Inode] = []
            var seen: Set<UInt64> = []
            var current: VirtiofsdState.Inode? = inode
            var base: Resolution = .unresolved
            while let next = current {
                if let known = resolved[next.id] {
                    base = known
                    break
                }
                guard seen.insert(next.id).inserted else { break }
                switch next.location {
                case .root:
                    resolved[next.id] = .path(".")
                    base = .path(".")
                    current = nil
                case .fullPath(let path):
                    resolved[next.id] = .path(path)
                    base = .path(path)
                    current = nil
                case .invalid:
                    resolved[next.id] = .invalid
                    base = .invalid
                    current = nil
                case .fileHandle(let handle):
                    resolved[next.id] = .fileHandle(handle)
                    base = .fileHandle(handle)
                    current = nil
                case .path(let parent, _):
                    chain.append(next)
                    current = byID[parent]
                }
            }
            for link in chain.reversed() {
                guard case .path(let name) = link.location.pathComponent, case .path(let parentPath) = base else {
                    base = .unresolved
                    resolved[link.id] = .unresolved
                    continue
                }
                base = .path(parentPath == "." ? name : parentPath + "/" + name)
                resolved[link.id] = base
            }
        }
        resolutions = resolved
    }

    /// The path of inode `id` relative to the shared directory, or `nil` for
    /// one the state gives none (located by file handle, invalid, unresolved,
    /// or not in the state).
    public func path(_ id: UInt64) -> String? {
        if case .path(let path)? = resolutions[id] { return path }
        return nil
    }

    /// The path of inode `id`, or a bracketed word for one without.
    public func display(_ id: UInt64) -> String {
        switch resolutions[id] {
        case .path(let path)?: return path
        case .fileHandle?: return "<file handle>"
        case .invalid?: return "<invalid>"
        case .unresolved?: return "<unresolved>"
        case nil: return "<no inode \(id)>"
        }
    }
}

extension VirtiofsdState.Location {
    /// The last component a `path` location adds.
    fileprivate var pathComponent: InodePaths.Resolution {
        if case .path(_, let name) = self { return .path(name) }
        return .unresolved
    }
}
