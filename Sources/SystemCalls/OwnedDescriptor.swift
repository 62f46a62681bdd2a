import Glibc
import SystemPackage

/// A file descriptor with one owner, closed exactly once: by ``close()``, or
/// when the owner lets it go.
///
/// It cannot be copied, so no two owners can close the same number; what it
/// refers to is used through ``descriptor`` while it is borrowed. Hand
/// ownership to something else (a message, another thread) with ``release()``.
public struct OwnedDescriptor: ~Copyable, Sendable {
    /// The descriptor, for calls that use it without taking it.
    public let descriptor: FileDescriptor

    /// Takes ownership of `descriptor`.
    public init(taking descriptor: FileDescriptor) {
        self.descriptor = descriptor
    }

    deinit {
        // Linux releases the number even when close fails, so it is never retried.
        _ = Glibc.close(descriptor.rawValue)
    }

    /// Closes the descriptor now, reporting a failure.
    public consuming func close() throws(SystemCallError) {
        let descriptor = self.descriptor
        discard self
        _ = try valueOrErrno(retryOnInterrupt: false) { Glibc.close(descriptor.rawValue) }.get(naming: "close")
    }

    /// Gives up ownership without closing: the caller closes it now.
    public consuming func release() -> FileDescriptor {
        let descriptor = self.descriptor
        discard self
        return descriptor
    }

    /// A new descriptor of its own for the file open on `descriptor`
    /// (`F_DUPFD_CLOEXEC`).
    public init(duplicating descriptor: FileDescriptor) throws(SystemCallError) {
        let raw = try valueOrErrno { fcntl(descriptor.rawValue, F_DUPFD_CLOEXEC, 0) }.get(naming: "fcntl(F_DUPFD_CLOEXEC)")
        self.init(taking: FileDescriptor(rawValue: raw))
    }
}
