import CStateToolShims
import Glibc
import SystemPackage

/// File calls swift-system does not have: unnamed temporary files, in-kernel
/// copies, renames, and paths opened relative to a directory.
public enum Files {
    /// An unnamed file in `directory` (`O_TMPFILE`), write-only, that
    /// disappears with its descriptor unless ``link(_:as:)`` names it.
    /// Fails with `EOPNOTSUPP` or `EISDIR` where the file system lacks it.
    public static func openUnnamedTemporary(in directory: String, permissions: mode_t = 0o666) throws(SystemCallError) -> OwnedDescriptor {
        let raw = try valueOrErrno { statetool_open_unnamed_temporary(directory, permissions) }.get(naming: "open(O_TMPFILE)")
        return OwnedDescriptor(taking: FileDescriptor(rawValue: raw))
    }

    /// Gives the unnamed file open on `descriptor` the name `path`, which must
    /// not exist (`linkat` through `/proc/self/fd`).
    public static func link(_ descriptor: FileDescriptor, as path: String) throws(SystemCallError) {
        _ = try valueOrErrno { statetool_link_unnamed_temporary(descriptor.rawValue, path) }.get(naming: "linkat")
    }

    /// Renames `source` to `destination`, replacing it.
    public static func rename(_ source: String, to destination: String) throws(SystemCallError) {
        _ = try valueOrErrno { Glibc.rename(source, destination) }.get(naming: "rename")
    }

    /// Removes the name `path`.
    public static func unlink(_ path: String) throws(SystemCallError) {
        _ = try valueOrErrno { Glibc.unlink(path) }.get(naming: "unlink")
    }

    /// Copies up to `count` bytes of the file `input` from `offset` (which
    /// advances) to `output` at its file position, inside the kernel
    /// (`copy_file_range`). Returns the bytes copied; 0 at the input's end.
    public static func copyRange(
        of input: FileDescriptor, offset: inout Int64, to output: FileDescriptor, count: Int
    ) throws(SystemCallError) -> Int {
        try advancing(&offset, naming: "copy_file_range") { statetool_copy_file_range(input.rawValue, $0, output.rawValue, count) }
    }

    /// Writes every byte of `pieces`, one after the other, to `file` from
    /// `offset` on (`pwritev`, at most `IOV_MAX` pieces a call, again where a
    /// call writes fewer bytes than asked); the file position does not move.
    /// Pieces that sit apart in memory land side by side in the file without
    /// being copied together first.
    public static func writeAll(_ pieces: [UnsafeRawBufferPointer], to file: FileDescriptor, at offset: Int64) throws(SystemCallError) {
        let maximumPieces = 1024  // Linux's IOV_MAX
        var vectors = pieces.filter { $0.count > 0 }.map { iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count) }
        var first = 0
        var position = offset
        while first < vectors.count {
            let last = min(vectors.count, first + maximumPieces)
            var written = try vectors[first..<last].withUnsafeBufferPointer { batch throws(SystemCallError) in
                try valueOrErrno { pwritev(file.rawValue, batch.baseAddress, Int32(batch.count), Int(position)) }.get(naming: "pwritev")
            }
            position += Int64(written)
            // Past the pieces written whole, and into the one written in part.
            while first < last, written >= vectors[first].iov_len {
                written -= vectors[first].iov_len
                first += 1
            }
            if written > 0 {
                vectors[first].iov_base = vectors[first].iov_base.map { $0 + written }
                vectors[first].iov_len -= written
            }
        }
    }

    /// The next range of `file` that holds data, at or after `offset`
    /// (`lseek` with `SEEK_DATA`, then `SEEK_HOLE`); `nil` when only a hole
    /// follows. The descriptor's position is put back as it was. A file system
    /// that cannot tell (`EINVAL`) reports everything from `offset` on as data.
    public static func nextDataRange(in file: FileDescriptor, from offset: Int64) throws(SystemCallError) -> Range<Int64>? {
        // Linux's values; Swift's Glibc module hides them (they need _GNU_SOURCE).
        let seekData: Int32 = 3, seekHole: Int32 = 4
        let position = try valueOrErrno { lseek(file.rawValue, 0, SEEK_CUR) }.get(naming: "lseek")
        defer { _ = lseek(file.rawValue, position, SEEK_SET) }
        let start: Int64
        switch valueOrErrno({ lseek(file.rawValue, Int(offset), seekData) }) {
        case .success(let found): start = Int64(found)
        case .failure(.noSuchAddressOrDevice): return nil
        case .failure(.invalidArgument): return offset..<Int64.max
        case .failure(let errno): throw SystemCallError("lseek", errno)
        }
        let end = try valueOrErrno { lseek(file.rawValue, Int(start), seekHole) }.get(naming: "lseek")
        return start..<Int64(end)
    }

    /// `O_PATH`: a descriptor that names a file without opening it for I/O, as
    /// virtiofsd holds its inodes (Swift's Glibc module does not export it).
    private static let pathOnly: Int32 = 0o10000000

    /// Opens `name`, one path component, in the directory open on `directory`
    /// as virtiofsd opens an inode: `O_PATH | O_NOFOLLOW`, close-on-exec.
    public static func openPath(_ name: String, in directory: FileDescriptor) throws(SystemCallError) -> OwnedDescriptor {
        let raw = try valueOrErrno { openat(directory.rawValue, name, pathOnly | O_NOFOLLOW | O_CLOEXEC) }.get(naming: "openat")
        return OwnedDescriptor(taking: FileDescriptor(rawValue: raw))
    }

    /// Whether `name` in `directory` opens as ``openPath(_:in:)`` opens it:
    /// `nil` when it does (the descriptor is closed at once), else why not.
    /// Safe to call from several threads at once.
    public static func probePath(_ name: String, in directory: FileDescriptor) -> Errno? {
        do {
            _ = try openPath(name, in: directory)
            return nil
        } catch {
            return error.errno
        }
    }

    /// Whether the file system of `descriptor` gives file handles
    /// (`name_to_handle_at` succeeds on it).
    public static func givesFileHandles(_ descriptor: FileDescriptor) -> Bool {
        do {
            _ = try handle(of: descriptor)
            return true
        } catch {
            return false
        }
    }

    /// What kind of file `descriptor` names (`fstat`, which also works on an
    /// `O_PATH` descriptor).
    public static func kind(of descriptor: FileDescriptor) throws(SystemCallError) -> FileKind {
        var status = stat()
        _ = try valueOrErrno { fstat(descriptor.rawValue, &status) }.get(naming: "fstat")
        return FileKind(mode: status.st_mode)
    }

    /// What kind of file `path` names, symbolic links followed (`fstatat`): nothing
    /// is opened, so a FIFO without a writer makes nothing wait.
    public static func kind(atPath path: String) throws(SystemCallError) -> FileKind {
        var status = stat()
        _ = try valueOrErrno { fstatat(AT_FDCWD, path, &status, 0) }.get(naming: "fstatat")
        return FileKind(mode: status.st_mode)
    }

    /// The kinds of file ``kind(of:)`` tells apart.
    public enum FileKind: Sendable, Hashable {
        /// A regular file.
        case regular
        /// A directory.
        case directory
        /// A symbolic link (an `O_PATH | O_NOFOLLOW` descriptor can name one).
        case symbolicLink
        /// A device, FIFO or socket.
        case other

        init(mode: mode_t) {
            switch mode & S_IFMT {
            case S_IFREG: self = .regular
            case S_IFDIR: self = .directory
            case S_IFLNK: self = .symbolicLink
            default: self = .other
            }
        }
    }

    /// Opens the file `descriptor` names anew with `flags`, through
    /// `/proc/self/fd` as virtiofsd reopens an inode for a handle; close-on-exec
    /// and non-blocking (a lease or a FIFO never makes it wait). It never
    /// changes the file: `O_CREAT`, `O_EXCL` and `O_TRUNC` are taken out of
    /// `flags` (and `O_NOFOLLOW`, as virtiofsd takes it out to follow the
    /// `/proc` link).
    public static func reopen(_ descriptor: FileDescriptor, flags: Int32) throws(SystemCallError) -> OwnedDescriptor {
        let unchanging = flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOFOLLOW)
        let raw = try valueOrErrno {
            Glibc.open("/proc/self/fd/\(descriptor.rawValue)", unchanging | O_CLOEXEC | O_NONBLOCK)
        }.get(naming: "open")
        return OwnedDescriptor(taking: FileDescriptor(rawValue: raw))
    }

    /// Opens `path` as virtiofsd locates an inode (`O_PATH | O_NOFOLLOW`,
    /// close-on-exec), but only if it resolves beneath `directory`: every
    /// component and every symbolic link on the way (`openat2` with
    /// `RESOLVE_BENEATH`). A path that would leave it fails with `EXDEV`;
    /// nothing outside `directory` is ever opened.
    public static func openPathBeneath(_ path: String, in directory: FileDescriptor) throws(SystemCallError) -> OwnedDescriptor {
        let raw = try valueOrErrno { statetool_open_path_beneath(directory.rawValue, path) }.get(naming: "openat2")
        return OwnedDescriptor(taking: FileDescriptor(rawValue: raw))
    }

    /// Where the file open on `descriptor` is, as the kernel names it
    /// (`readlink` of `/proc/self/fd/N`).
    public static func location(of descriptor: FileDescriptor) throws(SystemCallError) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = try valueOrErrno { readlink("/proc/self/fd/\(descriptor.rawValue)", &buffer, buffer.count - 1) }.get(naming: "readlink")
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Opens the directory `path` as virtiofsd opens its shared directory:
    /// `O_PATH | O_DIRECTORY | O_NOFOLLOW`, close-on-exec.
    public static func openPathDirectory(_ path: String) throws(SystemCallError) -> OwnedDescriptor {
        let raw = try valueOrErrno { Glibc.open(path, pathOnly | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }.get(naming: "open")
        return OwnedDescriptor(taking: FileDescriptor(rawValue: raw))
    }

    /// Opens `path` through swift-system, close-on-exec, as an owned descriptor.
    public static func open(
        _ path: String, _ mode: FileDescriptor.AccessMode, options: FileDescriptor.OpenOptions = [],
        permissions: FilePermissions = [.ownerReadWrite, .groupReadWrite, .otherReadWrite]
    ) throws(SystemCallError) -> OwnedDescriptor {
        do {
            let opened = try FileDescriptor.open(
                FilePath(path), mode, options: options.union(.closeOnExec),
                permissions: options.contains(.create) ? permissions : nil)
            return OwnedDescriptor(taking: opened)
        } catch {
            throw SystemCallError("open", (error as? Errno) ?? .ioError)
        }
    }

    /// A file handle: the kernel's persistent name for an inode.
    public struct Handle: Equatable, Sendable {
        /// The handle's type, as the kernel names it (`handle_type` of
        /// `struct file_handle`); the file system decides what it means.
        public var type: Int32
        /// The handle itself (`f_handle`): opaque bytes, as many as the kernel
        /// returned (`handle_bytes`).
        public var bytes: [UInt8]

        /// A handle from its type and bytes.
        public init(type: Int32, bytes: [UInt8]) {
            self.type = type
            self.bytes = bytes
        }
    }

    /// The file handle of the file open on `descriptor` (`name_to_handle_at`
    /// with `AT_EMPTY_PATH`).
    public static func handle(of descriptor: FileDescriptor) throws(SystemCallError) -> Handle {
        var type: Int32 = 0
        var bytes = [UInt8](repeating: 0, count: 128)
        var length = UInt32(bytes.count)
        _ = try valueOrErrno { statetool_file_handle(descriptor.rawValue, &type, &bytes, &length) }.get(naming: "name_to_handle_at")
        return Handle(type: type, bytes: Array(bytes.prefix(Int(length))))
    }

    /// Opens the file `handle` names on the file system that `mount` is on
    /// (`open_by_handle_at` with `O_PATH`, close-on-exec), as virtiofsd opens a
    /// file-handle inode: the file is named, never opened for I/O. `mount` must
    /// be open for reading (an `O_PATH` descriptor gives `EBADF`). The file may
    /// lie anywhere on that file system, not only under `mount`.
    ///
    /// Fails with `ESTALE` when the file system no longer has the file, `EPERM`
    /// without `CAP_DAC_READ_SEARCH`, `EINVAL` for a handle longer than 128 bytes.
    public static func openPath(by handle: Handle, onFileSystemOf mount: FileDescriptor) throws(SystemCallError) -> OwnedDescriptor {
        let raw = try valueOrErrno { statetool_open_by_handle(mount.rawValue, handle.type, handle.bytes, UInt32(clamping: handle.bytes.count)) }
            .get(naming: "open_by_handle_at")
        return OwnedDescriptor(taking: FileDescriptor(rawValue: raw))
    }

    /// A file's identity on this machine: its device and inode number.
    public struct Identity: Hashable, Sendable {
        /// The device the file is on (`st_dev`).
        public var device: UInt64
        /// Its inode number on that device (`st_ino`).
        public var inode: UInt64

        /// An identity from its parts.
        public init(device: UInt64, inode: UInt64) {
            self.device = device
            self.inode = inode
        }
    }

    /// The device and inode of the file open on `descriptor` (`fstat`, which
    /// also works on an `O_PATH` descriptor).
    public static func identity(of descriptor: FileDescriptor) throws(SystemCallError) -> Identity {
        var status = stat()
        _ = try valueOrErrno { fstat(descriptor.rawValue, &status) }.get(naming: "fstat")
        return Identity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
    }

    /// One entry of a directory, as `readdir` gives it.
    public struct DirectoryEntry: Sendable, Hashable {
        /// Its name in the directory.
        public var name: String
        /// Its inode number (`d_ino`; for a mount point, the covered directory's).
        public var inode: UInt64
        /// Whether it is a directory; `nil` when the file system does not say (`DT_UNKNOWN`).
        public var isDirectory: Bool?

        /// An entry from its parts.
        public init(name: String, inode: UInt64, isDirectory: Bool?) {
            self.name = name
            self.inode = inode
            self.isDirectory = isDirectory
        }
    }

    /// Calls `body` with each entry of the directory open on `directory`
    /// (except `.` and `..`) until it returns `false`, reading through a new
    /// descriptor of its own (`O_RDONLY | O_DIRECTORY` through
    /// `/proc/self/fd`), so `directory` may be an `O_PATH` one. Memory stays
    /// one entry, however large the directory.
    public static func forEachEntry(in directory: FileDescriptor, _ body: (DirectoryEntry) -> Bool) throws(SystemCallError) {
        let readable = try reopen(directory, flags: O_DIRECTORY)
        var opened: UnsafeMutableRawPointer?
        _ = try valueOrErrno { statetool_open_directory_stream(readable.descriptor.rawValue, &opened) }.get(naming: "fdopendir")
        _ = readable.release()  // the stream owns it now
        guard let stream = opened else { return }
        defer { statetool_close_directory_stream(stream) }
        var name = [CChar](repeating: 0, count: 256)
        var inode: UInt64 = 0
        var type: UInt8 = 0
        while try valueOrErrno({ statetool_read_directory_entry(stream, &name, &inode, &type) }).get(naming: "readdir") == 1 {
            let entryName = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let isDirectory: Bool? = type == 0 ? nil : type == 4  // DT_UNKNOWN, DT_DIR
            guard body(DirectoryEntry(name: entryName, inode: inode, isDirectory: isDirectory)) else { return }
        }
    }

    /// Whether `descriptor` is a terminal.
    public static func isTerminal(_ descriptor: FileDescriptor) -> Bool {
        isatty(descriptor.rawValue) == 1
    }

    /// What is at `path` without following a final symbolic link, or `nil` if nothing is.
    public static func type(at path: String) -> FileType? {
        try? FilePath(path).stat(followTargetSymlink: false).type
    }
}
