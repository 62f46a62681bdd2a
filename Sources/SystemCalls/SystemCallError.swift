import SystemPackage

/// A system call that failed: which one, and the `errno` it set.
public struct SystemCallError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The call's name, as in its man page (`splice`, `recvmsg`).
    public var call: String
    /// What the call set `errno` to.
    public var errno: Errno

    /// The failure of `call` (its man page's name) with `errno`.
    public init(_ call: String, _ errno: Errno) {
        self.call = call
        self.errno = errno
    }

    /// `call failed: reason`, the reason as `strerror` words it: `splice failed: Broken pipe`.
    public var description: String { "\(call) failed: \(errno)" }
}
