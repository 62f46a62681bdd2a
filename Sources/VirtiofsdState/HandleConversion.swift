import SystemCalls

/// `retarget --handles-to-paths SOURCE_DIR`: turns the inodes of a
/// `--migration-mode=file-handles` state into path inodes, each at the path
/// its handle leads to under the directory the state was saved from.
///
/// A file handle names a file of a file system, not a path: restored onto a
/// copy of the share on the same file system, such a state serves the guest
/// the original files. With paths the destination opens the copy's files.
///
/// Each handle is opened (`O_PATH`) on the source directory's file system, as
/// virtiofsd would there (``FileHandleResolver``); the file found must lie
/// under the source directory. The inode then names as parent the deepest
/// inode of the state at a directory above that path (already a path inode, or
/// converted too; the root when there is none) and as name the rest of the
/// path. Each such child adds one to its parent's refcount, as a find-paths
/// source counts it, so that the load, which drops one reference per child
/// loaded, leaves every refcount as the source had it. Ids, order, handles and
/// the other fields stay; the mount paths go when no file-handle inode is left.
enum HandleConversion {
    /// Converts the file-handle inodes of `dropping.state`; with `dropMissing`
    /// an inode whose handle does not resolve under `source` is dropped with
    /// everything under it and its handles (in `dropping`), else refused.
    ///
    /// - Throws: ``RetargetError/preflight(_:)`` when `source` cannot be
    ///   opened; ``RetargetError/fileHandleNotInSource(id:source:resolution:)``
    ///   for the first inode that does not resolve, without `dropMissing`.
    static func convert(
        _ dropping: inout Dropping, source: String, dropMissing: Bool
    ) throws(RetargetError) -> [RetargetResult.ConvertedInode] {
        let root: OwnedDescriptor
        do {
            root = try Files.openPathDirectory(source)
        } catch {
            throw .preflight(.cannotOpenSharedDirectory(source, error.errno))
        }
        let resolver: FileHandleResolver
        do {
            resolver = try FileHandleResolver(root: root.descriptor, mountPaths: dropping.state.mountPaths)
        } catch {
            throw .preflight(.cannotOpenSharedDirectory(source, error.errno))
        }
        var found: [UInt64: String] = [:]
        var unresolved: [(id: UInt64, reason: String)] = []
        let resolutions = resolver.resolve(dropping.state.inodes)
        for inode in dropping.state.inodes {
            guard let resolution = resolutions[inode.id] else { continue }
            if case .resolving(let path) = resolution {
                found[inode.id] = path
                continue
            }
            let refusal = RetargetError.fileHandleNotInSource(id: inode.id, source: source, resolution: resolution)
            guard dropMissing else { throw refusal }
            unresolved.append((inode.id, String(refusal.description.dropFirst("--handles-to-paths: ".count)).replacingDropHint()))
        }
        if !unresolved.isEmpty { dropping.drop(unresolved) }

        var state = dropping.state
        // Every inode at a path: the state's path inodes, then the converted ones.
        var byPath: [String: UInt64] = [".": VirtiofsdState.rootID]
        for (id, resolution) in InodePaths(state).resolutions {
            if case .path(let path) = resolution, byPath[path] == nil || id < byPath[path]! { byPath[path] = id }
        }
        for (id, path) in found.sorted(by: { $0.key < $1.key }) where byPath[path] == nil { byPath[path] = id }

        let index = Dictionary(state.inodes.indices.map { (state.inodes[$0].id, $0) }, uniquingKeysWith: { first, _ in first })
        var converted: [RetargetResult.ConvertedInode] = []
        for position in state.inodes.indices {
            let id = state.inodes[position].id
            guard let path = found[id] else { continue }
            let (parent, name) = placement(of: path, id: id, in: byPath)
            state.inodes[position].location = .path(parent: parent, name: name)
            if let parentPosition = index[parent] { state.inodes[parentPosition].refcount += 1 }
            converted.append(.init(id: id, path: path, parent: parent, name: name))
        }
        if !state.inodes.contains(where: { if case .fileHandle = $0.location { true } else { false } }) {
            state.mountPaths = []
        }
        dropping.state = state
        return converted
    }

    /// The deepest inode at a directory above `path` (not `id` itself), and
    /// the rest of the path as its name; `.` under the root for the source
    /// directory itself.
    static func placement(of path: String, id: UInt64, in byPath: [String: UInt64]) -> (parent: UInt64, name: String) {
        let components = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard !components.isEmpty else { return (VirtiofsdState.rootID, ".") }
        for depth in stride(from: components.count - 1, through: 1, by: -1) {
            if let parent = byPath[components[..<depth].joined(separator: "/")], parent != id {
                return (parent, components[depth...].joined(separator: "/"))
            }
        }
        return (VirtiofsdState.rootID, components.joined(separator: "/"))
    }
}

extension String {
    /// The refusal's reason without the hint to drop it, for a dropped inode.
    fileprivate func replacingDropHint() -> String {
        hasSuffix(" (--drop-missing drops it)") ? String(dropLast(" (--drop-missing drops it)".count)) : self
    }
}
