import CStateToolShims
import Glibc
import SystemPackage

/// The two ends of a new pipe.
@frozen
public struct PipeEnds: ~Copyable {
    /// The end to read from.
    public var read: OwnedDescriptor
    /// The end to write to.
    public var write: OwnedDescriptor
}

/// Pipes, and moving bytes into them.
public enum Pipes {
    /// A new close-on-exec pipe.
    public static func make() throws(SystemCallError) -> PipeEnds {
        var ends: [Int32] = [-1, -1]
        _ = try valueOrErrno { statetool_pipe(&ends) }.get(naming: "pipe2")
        return PipeEnds(read: OwnedDescriptor(taking: FileDescriptor(rawValue: ends[0])),
                        write: OwnedDescriptor(taking: FileDescriptor(rawValue: ends[1])))
    }

    /// Asks for a pipe buffer of `bytes` (`F_SETPIPE_SZ`); the kernel may give
    /// less, which is not an error. Returns the new size, or `nil` if refused.
    @discardableResult
    public static func grow(_ pipe: FileDescriptor, to bytes: Int32 = 1 << 20) -> Int32? {
        try? valueOrErrno { statetool_set_pipe_size(pipe.rawValue, bytes) }.get()
    }

    /// Moves up to `count` bytes of the file `input` from `offset` (which
    /// advances) into `pipe` inside the kernel (`splice`). Returns the bytes
    /// moved; 0 at the file's end.
    public static func splice(
        from input: FileDescriptor, offset: inout Int64, into pipe: FileDescriptor, count: Int
    ) throws(SystemCallError) -> Int {
        try advancing(&offset, naming: "splice") { statetool_splice_file_to_pipe(input.rawValue, $0, pipe.rawValue, count) }
    }
}

/// Waiting for a descriptor with `poll`.
public enum Readiness {
    /// What to wait for.
    public enum Event: Sendable {
        /// Data to read, or the end of the stream (`POLLIN`).
        case readable
        /// Room to write (`POLLOUT`).
        case writable

        var bits: Int16 { Int16(self == .readable ? POLLIN : POLLOUT) }
    }

    /// Waits until `descriptor` is ready for `event` (or has hung up), at most
    /// `timeout`. Returns false when the time ran out. A signal does not cut
    /// the wait short: it goes on for what is left of `timeout`.
    public static func wait(for event: Event, on descriptor: FileDescriptor, timeout: Duration) throws(SystemCallError) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            let left = deadline - ContinuousClock.now
            // Rounded up, so that a wait never ends before its timeout.
            let milliseconds = max(0, left.components.seconds * 1000 + (left.components.attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
            var request = pollfd(fd: descriptor.rawValue, events: event.bits, revents: 0)
            switch valueOrErrno(retryOnInterrupt: false, { poll(&request, 1, Int32(clamping: milliseconds)) }) {
            case .success(let ready): return ready > 0
            case .failure(.interrupted): continue
            case .failure(let errno): throw SystemCallError("poll", errno)
            }
        }
    }
}

extension FileDescriptor {
    /// One `write(2)`: up to `bytes.count` bytes, returning how many went.
    public func writeSome(_ bytes: UnsafeRawBufferPointer) throws(SystemCallError) -> Int {
        try valueOrErrno { Glibc.write(rawValue, bytes.baseAddress, bytes.count) }.get(naming: "write")
    }

    /// One `read(2)`: up to `buffer.count` bytes, returning how many came; 0 at the end.
    public func readSome(into buffer: UnsafeMutableRawBufferPointer) throws(SystemCallError) -> Int {
        try valueOrErrno { Glibc.read(rawValue, buffer.baseAddress, buffer.count) }.get(naming: "read")
    }
}
