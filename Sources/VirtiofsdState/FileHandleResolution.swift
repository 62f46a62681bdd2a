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
/// Whether the file lies under the directory is decided from the kernel's
/// name for the descriptor (`/proc/self/fd/N`), *verified*: that name less the
/// directory's own is opened again beneath the directory (`openat2` with
/// `RESOLVE_BENEATH`) and must be the same device and inode. A name the
/// verification does not confirm is outside. This is chosen over walking up
/// through `..` from the descriptor because a regular file has no `..` to
/// walk, and because the walk would open directories outside the share; the
/// verified name never opens anything outside beyond the one `O_PATH` open of
/// the handle itself, and cannot be fooled by a name that merely looks inside
/// (a rename since, a symbolic link, a bind mount). A file whose kernel name
/// is another of its hard links, outside, is reported outside although one of
/// its links lies inside.
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

    /// Opens `handle` (`O_PATH`, nothing else) and says where the file is;
    /// the descriptor is closed before it returns.
    public func resolve(_ handle: VirtiofsdState.FileHandle) -> FileHandleResolution {
        guard let mount = mounts[handle.mountID] else {
            if let errno = unopened[handle.mountID] { return .unchecked(errno) }
            return .stale(.unknownMount(handle.mountID))
        }
        guard handle.bytes.count <= 128 else { return .stale(.tooLong(handle.bytes.count)) }
        let opened: OwnedDescriptor
        do throws(SystemCallError) {
            opened = try Files.openPath(by: Files.Handle(type: handle.handleType, bytes: handle.bytes), onFileSystemOf: mount)
        } catch {
            return error.errno == .notPermitted ? .unchecked(error.errno) : .stale(.openFailed(error.errno))
        }
        let found = (try? Files.location(of: opened.descriptor)) ?? ""
        guard let relative = relativePath(of: found), let identity = try? Files.identity(of: opened.descriptor),
            let beneath = try? Files.openPathBeneath(relative.isEmpty ? "." : relative, in: root),
            (try? Files.identity(of: beneath.descriptor)) == identity
        else { return .outsideShare(path: found) }
        return .resolving(path: relative)
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
