import CStateToolShims
import Glibc
import SystemPackage

/// Where a command's output goes, written so that a failed run leaves nothing
/// behind and never touches its input.
///
/// - `-` is standard output (refused when it is a terminal, for binary data).
/// - An existing path that is not a regular file (`/dev/null`, a FIFO) is
///   written directly.
/// - Any other path gets a temporary file in the same folder, renamed into place
///   by ``commit()``. The temporary file is unnamed (`O_TMPFILE`) where the file
///   system allows, so even a killed process leaves nothing; elsewhere it is a
///   hidden `.NAME.statetool-*` file, removed if the output is not committed.
///
/// A path naming one of the inputs is refused before anything is written.
public final class OutputFile: ByteSink {
    private enum Kind {
        case standardOutput
        case direct
        case unnamedTemporary
        case namedTemporary(path: String)
    }

    /// The path as given (`-` for standard output).
    public let path: String
    private let descriptor: FileDescriptor
    private let kind: Kind
    private var committed = false
    /// Bytes written so far.
    public private(set) var bytesWritten: UInt64 = 0

    /// Opens `path` for output.
    ///
    /// - Parameters:
    ///   - path: The output path, or `-` for standard output.
    ///   - inputs: Input paths that must not be overwritten (`-` is ignored).
    ///   - allowTerminal: Whether standard output may be a terminal (text output).
    public init(path: String, protecting inputs: [String], allowTerminal: Bool = false) throws(OutputError) {
        self.path = path
        if path == "-" {
            guard allowTerminal || isatty(STDOUT_FILENO) != 1 else { throw .refusingTerminal }
            descriptor = .standardOutput
            kind = .standardOutput
            return
        }
        var target = stat()
        let exists = stat(path, &target) == 0
        if exists {
            for input in inputs where input != "-" {
                var source = stat()
                if stat(input, &source) == 0 && source.st_dev == target.st_dev && source.st_ino == target.st_ino {
                    throw .wouldOverwriteInput(path: path)
                }
            }
        }
        if exists && (target.st_mode & S_IFMT) != S_IFREG {
            descriptor = try Self.open(path, flags: O_WRONLY | O_CLOEXEC, reportedAs: path)
            kind = .direct
            return
        }
        let directory = FilePath(path).removingLastComponent().string
        let unnamed = statetool_open_unnamed_temporary(directory.isEmpty ? "." : directory, 0o666)
        if unnamed >= 0 {
            descriptor = FileDescriptor(rawValue: unnamed)
            kind = .unnamedTemporary
            return
        }
        let temporary = Self.temporaryName(for: path)
        descriptor = try Self.open(temporary, flags: O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, reportedAs: path)
        kind = .namedTemporary(path: temporary)
    }

    deinit {
        switch kind {
        case .standardOutput: return
        case .direct, .unnamedTemporary: try? descriptor.close()
        case .namedTemporary(let temporary):
            try? descriptor.close()
            if !committed { unlink(temporary) }
        }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws(OutputError) {
        do {
            _ = try descriptor.writeAll(bytes)
        } catch let errno as Errno {
            throw .writeFailed(errno)
        } catch {
            throw .writeFailed(.ioError)
        }
        bytesWritten += UInt64(bytes.count)
    }

    /// Nothing is held back here: ``commit()`` is what makes a file output appear.
    public func finish() throws(OutputError) {}

    /// Whether bytes already written can be rewritten or cut off.
    public var isRewindable: Bool {
        if case .standardOutput = kind { return false }
        if case .direct = kind { return false }
        return true
    }

    /// Cuts the output back to its first `length` bytes.
    public func truncate(to length: UInt64) throws(OutputError) {
        guard isRewindable else { throw .cannotRewind }
        guard ftruncate(descriptor.rawValue, off_t(length)) == 0,
              lseek(descriptor.rawValue, off_t(length), SEEK_SET) >= 0
        else { throw .writeFailed(.current) }
        bytesWritten = length
    }

    /// Rewrites bytes already written, at `offset`.
    public func overwrite(at offset: UInt64, with bytes: [UInt8]) throws(OutputError) {
        guard isRewindable else { throw .cannotRewind }
        do {
            _ = try descriptor.writeAll(toAbsoluteOffset: Int64(offset), bytes)
        } catch let errno as Errno {
            throw .writeFailed(errno)
        } catch {
            throw .writeFailed(.ioError)
        }
    }

    /// Appends `count` bytes of the regular file `input`, from `offset` on,
    /// copied inside the kernel (`copy_file_range`) where the file systems
    /// allow it, and through a buffer (`pread`, `write`) where they do not.
    public func appendRange(of input: FileDescriptor, offset: UInt64, count: UInt64) throws(OutputError) {
        var position = Int64(offset)
        var left = count
        while left > 0 {
            let copied = statetool_copy_file_range(input.rawValue, &position, descriptor.rawValue, Int(min(left, 1 << 30)))
            if copied > 0 {
                left -= UInt64(copied)
                bytesWritten += UInt64(copied)
                continue
            }
            if copied < 0 && errno == EINTR { continue }
            guard copied < 0, [EXDEV, EINVAL, ENOSYS, EOPNOTSUPP, EBADF].contains(errno) else {
                throw copied == 0 ? .writeFailed(.ioError) : .writeFailed(.current)
            }
            try appendByReading(input, offset: UInt64(position), count: left)
            return
        }
    }

    private func appendByReading(_ input: FileDescriptor, offset: UInt64, count: UInt64) throws(OutputError) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        var position = offset
        var left = count
        while left > 0 {
            let wanted = UnsafeMutableRawBufferPointer(rebasing: buffer[..<Int(min(left, UInt64(buffer.count)))])
            let read: Int
            do {
                read = try input.read(fromAbsoluteOffset: Int64(position), into: wanted, retryOnInterrupt: true)
            } catch {
                throw .writeFailed((error as? Errno) ?? .ioError)
            }
            guard read > 0 else { throw .writeFailed(.ioError) }
            try write(UnsafeRawBufferPointer(rebasing: buffer[..<read]))
            position += UInt64(read)
            left -= UInt64(read)
        }
    }

    /// A new descriptor that reads what was written from its first byte, for
    /// checking a file output before ``commit()``; `nil` for standard output
    /// and outputs written directly (a pipe cannot be read back).
    public func openForReadingBack() throws(OutputError) -> FileDescriptor? {
        guard isRewindable else { return nil }
        do {
            return try FileDescriptor.open(FilePath("/proc/self/fd/\(descriptor.rawValue)"), .readOnly, options: [.closeOnExec])
        } catch {
            throw .cannotCreate(path: path, (error as? Errno) ?? .ioError)
        }
    }

    /// Puts a finished file output in place of `path`. Until this is called a
    /// file output does not exist; without it, nothing is left behind.
    public func commit() throws(OutputError) {
        switch kind {
        case .standardOutput, .direct:
            break
        case .unnamedTemporary:
            // linkat cannot replace a file: link under a fresh name, then rename over.
            var linked = Self.temporaryName(for: path)
            while statetool_link_unnamed_temporary(descriptor.rawValue, linked) != 0 {
                guard errno == EEXIST else { throw .cannotCommit(path: path, .current) }
                linked = Self.temporaryName(for: path)
            }
            guard rename(linked, path) == 0 else {
                let failure = Errno.current
                unlink(linked)
                throw .cannotCommit(path: path, failure)
            }
        case .namedTemporary(let temporary):
            guard rename(temporary, path) == 0 else { throw .cannotCommit(path: path, .current) }
        }
        committed = true
    }

    private static func open(_ path: String, flags: Int32, reportedAs output: String) throws(OutputError) -> FileDescriptor {
        let fd = Glibc.open(path, flags, 0o666)
        guard fd >= 0 else { throw .cannotCreate(path: output, .current) }
        return FileDescriptor(rawValue: fd)
    }

    /// `.NAME.statetool-RANDOM` beside `path`.
    private static func temporaryName(for path: String) -> String {
        var file = FilePath(path)
        let name = file.lastComponent?.string ?? "output"
        file.removeLastComponent()
        let suffix = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        return file.appending(".\(name).statetool-\(suffix)").string
    }
}

extension Errno {
    /// The calling thread's `errno`, after a C call that failed.
    public static var current: Errno { Errno(rawValue: errno) }
}
