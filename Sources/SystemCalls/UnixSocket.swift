import CStateToolShims
import Glibc
import SystemPackage

/// Unix stream sockets: connecting, listening, accepting, and messages that
/// carry file descriptors.
public enum UnixSocket {
    /// The most descriptors one received message may carry.
    public static let maximumDescriptorsPerMessage = 32

    /// A new close-on-exec Unix stream socket.
    public static func stream() throws(SystemCallError) -> OwnedDescriptor {
        let raw = try valueOrErrno { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
            .get(naming: "socket")
        return OwnedDescriptor(taking: FileDescriptor(rawValue: raw))
    }

    /// Two connected sockets.
    @frozen
    public struct Pair: ~Copyable {
        /// One end.
        public var first: OwnedDescriptor
        /// The other end, connected to ``first``.
        public var second: OwnedDescriptor
    }

    /// Two connected close-on-exec Unix stream sockets.
    public static func pair() throws(SystemCallError) -> Pair {
        var ends: [Int32] = [-1, -1]
        _ = try valueOrErrno { socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) }
            .get(naming: "socketpair")
        return Pair(first: OwnedDescriptor(taking: FileDescriptor(rawValue: ends[0])),
                    second: OwnedDescriptor(taking: FileDescriptor(rawValue: ends[1])))
    }

    /// Connects `socket` to the listener at `path`.
    public static func connect(_ socket: borrowing OwnedDescriptor, to path: String) throws(SystemCallError) {
        var address = try address(path, call: "connect")
        let raw = socket.descriptor.rawValue
        _ = try withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                // A connect interrupted by a signal goes on in the background: not retried.
                valueOrErrno(retryOnInterrupt: false) { Glibc.connect(raw, address, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        }.get(naming: "connect")
    }

    /// Binds `socket` to `path` and listens on it.
    public static func listen(_ socket: borrowing OwnedDescriptor, at path: String, backlog: Int32 = 4) throws(SystemCallError) {
        var address = try address(path, call: "bind")
        let raw = socket.descriptor.rawValue
        _ = try withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                valueOrErrno { bind(raw, address, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        }.get(naming: "bind")
        _ = try valueOrErrno { Glibc.listen(raw, backlog) }.get(naming: "listen")
    }

    /// The next connection on the listening `socket`, close-on-exec.
    public static func accept(_ socket: borrowing OwnedDescriptor) throws(SystemCallError) -> OwnedDescriptor {
        let raw = socket.descriptor.rawValue
        let accepted = try valueOrErrno { statetool_accept(raw) }.get(naming: "accept4")
        return OwnedDescriptor(taking: FileDescriptor(rawValue: accepted))
    }

    /// Sends up to `bytes.count` bytes with `descriptors` attached (none when
    /// empty), never raising SIGPIPE. Returns the bytes sent.
    public static func send(
        _ socket: FileDescriptor, _ bytes: UnsafeRawBufferPointer, attaching descriptors: [Int32]
    ) throws(SystemCallError) -> Int {
        try descriptors.withUnsafeBufferPointer { fds in
            valueOrErrno { statetool_send_with_fds(socket.rawValue, bytes.baseAddress, bytes.count, fds.baseAddress, Int32(fds.count)) }
        }.get(naming: "sendmsg")
    }

    /// What one receive brought.
    public struct Received {
        /// Bytes read into the buffer; 0 at the end of the stream.
        public var count: Int
        /// Descriptors that came with them (close-on-exec), owned by the caller.
        public var descriptors: AttachedDescriptors
        /// Whether the kernel dropped descriptors beyond
        /// ``UnixSocket/maximumDescriptorsPerMessage`` (those that came are in ``descriptors``).
        public var descriptorsTruncated: Bool
    }

    /// Receives up to `buffer.count` bytes and the descriptors sent with them.
    public static func receive(_ socket: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer) throws(SystemCallError) -> Received {
        var fds = [Int32](repeating: -1, count: maximumDescriptorsPerMessage)
        var fdCount: Int32 = 0
        var truncated: Int32 = 0
        let count = try valueOrErrno {
            statetool_receive_with_fds(socket.rawValue, buffer.baseAddress, buffer.count, &fds, Int32(fds.count), &fdCount, &truncated)
        }.get(naming: "recvmsg")
        return Received(count: count, descriptors: AttachedDescriptors(received: Array(fds.prefix(Int(fdCount)))), descriptorsTruncated: truncated != 0)
    }

    /// Which ways ``shutdown(_:_:)`` stops.
    public enum Direction: Sendable {
        /// No more sending: the peer reads the end of the stream.
        case writing
        /// Neither way.
        case both

        var how: Int32 { Int32(self == .writing ? SHUT_WR : SHUT_RDWR) }
    }

    /// Shuts `socket` down in `direction`, leaving the descriptor open.
    public static func shutdown(_ socket: FileDescriptor, _ direction: Direction = .both) throws(SystemCallError) {
        _ = try valueOrErrno { Glibc.shutdown(socket.rawValue, direction.how) }.get(naming: "shutdown")
    }

    /// `sockaddr_un` for `path`; a path too long for it fails as `call` would.
    private static func address(_ path: String, call: String) throws(SystemCallError) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw SystemCallError(call, .fileNameTooLong) }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        return address
    }
}
