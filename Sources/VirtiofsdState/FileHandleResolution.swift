import SystemCalls
import SystemPackage

/// What a file-handle inode's handle (`--migration-mode=file-handles`) comes to
/// on a shared directory's file system, as virtiofsd's loader opens it.
///
/// virtiofsd opens such an inode with `open_by_handle_at` on the mount its
/// state names (`mount_paths`, opened relative to the shared directory). A
/// file handle names an inode of a *file system*, not a path: on a copy of the
/// share on the same file system it opens the original file, outside the
/// copy, and the load still succeeds.
public enum FileHandleResolution: Hashable, Sendable {
    /// The handle opens a file that is under the shared directory: the same
    /// device and inode as `path` (relative to it, `""` for the directory
    /// itself) opened beneath it.
    case resolving(path: String)
    /// The handle opens a file outside the shared directory, at `path` as the
    /// kernel names it: virtiofsd loads it and the guest is served that file,
    /// not the share's.
    case outsideShare(path: String)
    /// The handle does not open: virtiofsd's loader meets the same error
    /// (`abort` stops the load at it, `guest-error` makes the inode invalid).
    case stale(FileHandleFailure)
    /// statetool could not try: opening by handle needs `CAP_DAC_READ_SEARCH`
    /// (`EPERM`), or the mount lies outside the shared directory and statetool
    /// does not open it.
    case unchecked(Errno)

    /// The resolution's stable kebab-case name: `resolving`,
    /// `resolving-outside-share`, `stale`, `unchecked`.
    public var status: String {
        switch self {
        case .resolving: return "resolving"
        case .outsideShare: return "resolving-outside-share"
        case .stale: return "stale"
        case .unchecked: return "unchecked"
        }
    }
}

/// Why virtiofsd cannot open a file-handle inode.
public enum FileHandleFailure: Hashable, Sendable, CustomStringConvertible {
    /// The handle's mount id is not in the state's mount paths, or its path
    /// did not open on the destination.
    case unknownMount(UInt64)
    /// The handle is longer than the kernel's 128 bytes.
    case tooLong(Int)
    /// `open_by_handle_at` failed: `ESTALE` when the file system no longer has
    /// the file (deleted, or another file system).
    case openFailed(Errno)

    /// In virtiofsd's words (`Inode N: ` precedes it in its log).
    public var description: String {
        switch self {
        case .unknownMount(let id): return "Unknown mount ID \(id)"
        case .tooLong: return "File handle too long"
        case .openFailed(let errno): return "Opening file handle: \(errno)"
        }
    }
}

/// Opens file-handle inodes on a shared directory's file system, as
/// virtiofsd's loader does, and decides whether each file found lies under
/// the directory.
///
/// Whether the file lies under the directory is decided by device and inode,
/// never by a name alone. First from the kernel's name for the descriptor
/// (`/proc/self/fd/N`): that name less the directory's own is opened again
/// beneath the directory (`openat2` with `RESOLVE_BENEATH`) and must be the
/// same device and inode. The kernel's name is not enough on its own: for a
/// regular file whose dentry is not cached it is a disconnected `/NAME`, and
/// for a file with several hard links it is any one of them. So the files
/// the names do not confirm are then looked for under the directory, in one
/// walk of it for all of them (`readdir`, each entry's inode number compared
/// on its directory's device, a match confirmed beneath as above; the walk
/// stops when all are found): a file found is resolving, the others are
/// outside, named by the kernel's name. This is chosen over walking up
/// through `..` from the descriptor because a regular file has no `..` to
/// walk, and because that walk would open directories outside the share;
/// nothing outside is opened here beyond the one `O_PATH` open of the handle
/// itself. The walk costs a `readdir` of the share, only when some handle
/// does not resolve by its name (on a copy of the share: all of them).
public struct FileHandleResolver {
    /// The shared directory (`O_PATH`), owned by the caller.
    let root: FileDescriptor
    /// The shared directory's location, as the kernel names it.
    let rootLocation: String
    /// A descriptor open for reading on each source mount id's path.
    private let mounts = DescriptorTable<UInt64>()
    /// Mount paths statetool does not open (outside the directory), by mount id.
    private var unopened: [UInt64: Errno] = [:]

    /// A resolver for the shared directory open on `root`, opening each of
    /// `mountPaths` relative to it, as virtiofsd opens its mount descriptors
    /// (`O_RDONLY`; statetool only beneath the directory). A path that does not
    /// open leaves its mount id unknown, as in virtiofsd.
    public init(root: FileDescriptor, mountPaths: [VirtiofsdState.MountPath]) throws(SystemCallError) {
        self.root = root
        rootLocation = try Files.location(of: root)
        for entry in mountPaths where mounts[entry.mountID] == nil {
            do throws(SystemCallError) {
                let located = try Files.openPathBeneath(entry.path.isEmpty ? "." : entry.path, in: root)
                mounts.insert(try Files.reopen(located.descriptor, flags: 0), for: entry.mountID)  // O_RDONLY
            } catch {
                if error.errno == .improperLink { unopened[entry.mountID] = error.errno }
            }
        }
    }

    /// Opens the handle of every inode of `inodes` located by one (`O_PATH`,
    /// nothing else; each descriptor closed at once) and says where each file
    /// is, by inode id. The root is never taken by handle.
    public func resolve(_ inodes: [VirtiofsdState.Inode]) -> [UInt64: FileHandleResolution] {
        var resolutions: [UInt64: FileHandleResolution] = [:]
        var unconfirmed: [Files.Identity: [UInt64]] = [:]
        for inode in inodes where inode.id != VirtiofsdState.rootID {
            guard case .fileHandle(let handle) = inode.location else { continue }
            let (resolution, identity) = resolve(handle)
            resolutions[inode.id] = resolution
            if case .outsideShare = resolution, let identity { unconfirmed[identity, default: []].append(inode.id) }
        }
        for (identity, path) in find(Set(unconfirmed.keys)) {
            for id in unconfirmed[identity] ?? [] { resolutions[id] = .resolving(path: path) }
        }
        return resolutions
    }

    /// Opens `handle` and says where the file is as its kernel name says it:
    /// `.outsideShare` also for a file the name does not confirm, with its identity.
    private func resolve(_ handle: VirtiofsdState.FileHandle) -> (FileHandleResolution, Files.Identity?) {
        guard let mount = mounts[handle.mountID] else {
            if let errno = unopened[handle.mountID] { return (.unchecked(errno), nil) }
            return (.stale(.unknownMount(handle.mountID)), nil)
        }
        guard handle.bytes.count <= 128 else { return (.stale(.tooLong(handle.bytes.count)), nil) }
        let opened: OwnedDescriptor
        do throws(SystemCallError) {
            opened = try Files.openPath(by: Files.Handle(type: handle.handleType, bytes: handle.bytes), onFileSystemOf: mount)
        } catch {
            return (error.errno == .notPermitted ? .unchecked(error.errno) : .stale(.openFailed(error.errno)), nil)
        }
        let found = (try? Files.location(of: opened.descriptor)) ?? ""
        let identity = try? Files.identity(of: opened.descriptor)
        if let relative = relativePath(of: found), let identity, isBeneath(relative, identity) {
            return (.resolving(path: relative), identity)
        }
        return (.outsideShare(path: found), identity)
    }

    /// Whether `relative` opens beneath the shared directory as the file `identity`.
    private func isBeneath(_ relative: String, _ identity: Files.Identity) -> Bool {
        guard let beneath = try? Files.openPathBeneath(relative.isEmpty ? "." : relative, in: root) else { return false }
        return (try? Files.identity(of: beneath.descriptor)) == identity
    }

    /// Walks the shared directory (depth first, never following a symbolic
    /// link, crossing mounts as virtiofsd does) for the files `wanted`, until
    /// all are found: each found one's path, confirmed beneath.
    func find(_ wanted: Set<Files.Identity>) -> [Files.Identity: String] {
        var found: [Files.Identity: String] = [:]
        guard !wanted.isEmpty else { return found }
        var pending = [""]
        while let directory = pending.popLast(), found.count < wanted.count {
            guard let opened = try? Files.openPathBeneath(directory.isEmpty ? "." : directory, in: root),
                let device = try? Files.identity(of: opened.descriptor).device
            else { continue }
            try? Files.forEachEntry(in: opened.descriptor) { entry in
                let path = directory.isEmpty ? entry.name : directory + "/" + entry.name
                let identity = Files.Identity(device: device, inode: entry.inode)
                if wanted.contains(identity), found[identity] == nil, isBeneath(path, identity) { found[identity] = path }
                if entry.isDirectory ?? isDirectory(path) { pending.append(path) }
                return found.count < wanted.count
            }
        }
        return found
    }

    /// Whether `relative` names a directory beneath the shared directory (for `DT_UNKNOWN`).
    private func isDirectory(_ relative: String) -> Bool {
        guard let opened = try? Files.openPathBeneath(relative, in: root) else { return false }
        return (try? Files.kind(of: opened.descriptor)) == .directory
    }

    /// `location` relative to the shared directory (`""` for the directory),
    /// or `nil` when it does not start with the directory's location.
    func relativePath(of location: String) -> String? {
        if location == rootLocation { return "" }
        let prefix = rootLocation == "/" ? "/" : rootLocation + "/"
        guard location.hasPrefix(prefix) else { return nil }
        return String(location.dropFirst(prefix.count))
    }
}
