import SystemCalls
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
    /// The descriptor written to.
    private let descriptor: FileDescriptor
    /// What closes it, once; `nil` for standard output.
    private let owner: OwnedDescriptor?
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
            guard allowTerminal || !Files.isTerminal(.standardOutput) else { throw .refusingTerminal }
            descriptor = .standardOutput
            owner = nil
            kind = .standardOutput
            return
        }
        let target = try? FilePath(path).stat()
        if let target {
            for input in inputs where input != "-" {
                if let source = try? FilePath(input).stat(), source.deviceID == target.deviceID, source.inode == target.inode {
                    throw .wouldOverwriteInput(path: path)
                }
            }
        }
        if let target, target.type != .regular {
            let opened = try Self.open(reportedAs: path) { () throws(SystemCallError) in try Files.open(path, .writeOnly) }
            descriptor = opened.descriptor
            owner = consume opened
            kind = .direct
            return
        }
        let directory = FilePath(path).removingLastComponent().string
        do {
            let opened = try Files.openUnnamedTemporary(in: directory.isEmpty ? "." : directory)
            descriptor = opened.descriptor
            owner = consume opened
            kind = .unnamedTemporary
            return
        } catch {
            // No O_TMPFILE here: a named temporary file, removed unless committed.
        }
        let temporary = Self.temporaryName(for: path)
        let opened = try Self.open(reportedAs: path) { () throws(SystemCallError) in
            try Files.open(temporary, .writeOnly, options: [.create, .exclusiveCreate])
        }
        descriptor = opened.descriptor
        owner = consume opened
        kind = .namedTemporary(path: temporary)
    }

    deinit {
        if case .namedTemporary(let temporary) = kind, !committed { try? Files.unlink(temporary) }
    }

    /// Writes all of `bytes` at the descriptor's position, adding them to
    /// ``bytesWritten``.
    ///
    /// - Throws: ``OutputError/writeFailed(_:)`` (`EPIPE` when a pipe's reader
    ///   went away).
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
        do {
            try descriptor.resize(to: Int64(length))
            _ = try descriptor.seek(offset: Int64(length), from: .start)
        } catch {
            throw .writeFailed((error as? Errno) ?? .ioError)
        }
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
    /// The input's holes stay holes (a mapped-ram file's pages that were never
    /// written): only its data ranges are copied, found with `SEEK_DATA`.
    public func appendRange(of input: FileDescriptor, offset: UInt64, count: UInt64) throws(OutputError) {
        let end = Int64(offset + count)
        var position = Int64(offset)
        while position < end {
            let data: Range<Int64>?
            do {
                data = try Files.nextDataRange(in: input, from: position)
            } catch {
                throw .writeFailed(error.errno)
            }
            let dataStart = min(data?.lowerBound ?? end, end)
            if dataStart > position {
                try appendHole(UInt64(dataStart - position))
                position = dataStart
            }
            guard let data, position < end else { break }
            let dataEnd = min(data.upperBound, end)
            try appendData(of: input, offset: UInt64(position), count: UInt64(dataEnd - position))
            position = dataEnd
        }
    }

    /// Writes `bytes` at `offset` of a file output (`pwrite`), whatever was
    /// written before; the file position does not move.
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(OutputError) {
        guard isRewindable else { throw .cannotRewind }
        do {
            _ = try descriptor.writeAll(toAbsoluteOffset: Int64(offset), bytes)
        } catch let errno as Errno {
            throw .writeFailed(errno)
        } catch {
            throw .writeFailed(.ioError)
        }
        bytesWritten = max(bytesWritten, offset + UInt64(bytes.count))
    }

    /// Writes `pieces` one after the other at `offset` of a file output
    /// (`pwritev`), whatever was written before; the file position does not
    /// move. What ``write(_:at:)`` does for bytes that sit apart in memory.
    public func write(pieces: [UnsafeRawBufferPointer], at offset: UInt64) throws(OutputError) {
        guard isRewindable else { throw .cannotRewind }
        do {
            try Files.writeAll(pieces, to: descriptor, at: Int64(offset))
        } catch {
            throw .writeFailed(error.errno)
        }
        bytesWritten = max(bytesWritten, offset + pieces.reduce(0) { $0 + UInt64($1.count) })
    }

    /// Whether any of the `count` bytes at `offset` of a file output is data
    /// rather than a hole (`SEEK_DATA`).
    public func holdsData(at offset: UInt64, count: UInt64) throws(OutputError) -> Bool {
        do {
            guard let data = try Files.nextDataRange(in: descriptor, from: Int64(offset)) else { return false }
            return data.lowerBound < Int64(offset + count)
        } catch {
            throw .writeFailed(error.errno)
        }
    }

    /// Copies `count` bytes of the regular file `input` from `offset` to
    /// `destination` of a file output, inside the kernel (`copy_file_range`)
    /// where the file systems allow it, through a buffer where not.
    public func copy(of input: FileDescriptor, offset: UInt64, count: UInt64, to destination: UInt64) throws(OutputError) {
        guard isRewindable else { throw .cannotRewind }
        do {
            _ = try descriptor.seek(offset: Int64(destination), from: .start)
        } catch {
            throw .writeFailed((error as? Errno) ?? .ioError)
        }
        let before = bytesWritten
        try appendData(of: input, offset: offset, count: count)
        bytesWritten = max(before, destination + count)
    }

    /// Moves the output `count` bytes on without writing them, leaving a hole.
    private func appendHole(_ count: UInt64) throws(OutputError) {
        do {
            let position = try descriptor.seek(offset: Int64(count), from: .current)
            try descriptor.resize(to: position)
        } catch {
            throw .writeFailed((error as? Errno) ?? .ioError)
        }
        bytesWritten += count
    }

    private func appendData(of input: FileDescriptor, offset: UInt64, count: UInt64) throws(OutputError) {
        var position = Int64(offset)
        var left = count
        while left > 0 {
            let copied: Int
            do {
                copied = try Files.copyRange(of: input, offset: &position, to: descriptor, count: Int(min(left, 1 << 30)))
            } catch {
                // Where the kernel cannot copy between these two files, copy through a buffer.
                let unsupported: [Errno] = [.improperLink, .invalidArgument, .noFunction, .notSupported, .badFileDescriptor]
                guard unsupported.contains(error.errno) else { throw .writeFailed(error.errno) }
                try appendByReading(input, offset: UInt64(position), count: left)
                return
            }
            guard copied > 0 else { throw .writeFailed(.ioError) }  // the input ended early
            left -= UInt64(copied)
            bytesWritten += UInt64(copied)
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
            while true {
                do {
                    try Files.link(descriptor, as: linked)
                    break
                } catch where error.errno == .fileExists {
                    linked = Self.temporaryName(for: path)
                } catch {
                    throw .cannotCommit(path: path, error.errno)
                }
            }
            do {
                try Files.rename(linked, to: path)
            } catch {
                try? Files.unlink(linked)
                throw .cannotCommit(path: path, error.errno)
            }
        case .namedTemporary(let temporary):
            do {
                try Files.rename(temporary, to: path)
            } catch {
                throw .cannotCommit(path: path, error.errno)
            }
        }
        committed = true
    }

    private static func open(
        reportedAs output: String, _ call: () throws(SystemCallError) -> OwnedDescriptor
    ) throws(OutputError) -> OwnedDescriptor {
        do {
            return try call()
        } catch {
            throw .cannotCreate(path: output, error.errno)
        }
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
