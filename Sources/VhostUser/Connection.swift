import CStateToolShims
import Glibc
import StateStream
import SystemPackage

/// A vhost-user connection: a Unix stream socket that carries messages and
/// file descriptors (`SCM_RIGHTS`).
///
/// Every wait is bounded by ``timeout``; every call retries on `EINTR`; sends
/// continue after partial writes and never raise SIGPIPE (`MSG_NOSIGNAL`).
/// Descriptors travel with the first byte of a message, as QEMU, libvhost-user
/// and rust-vmm send them.
public final class Connection {
    /// The socket.
    public let socket: FileDescriptor
    /// How long any one wait may last.
    public let timeout: Duration

    /// Wraps a connected stream socket (one end of a `socketpair`, say); the
    /// connection owns it and closes it.
    public init(socket: FileDescriptor, timeout: Duration) {
        self.socket = socket
        self.timeout = timeout
    }

    deinit { try? socket.close() }

    /// Connects to the back-end listening at `path`.
    public static func connect(to path: String, timeout: Duration) throws(VhostUserError) -> Connection {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .systemCall("socket", .current) }
        let connection = Connection(socket: FileDescriptor(rawValue: fd), timeout: timeout)
        var address = try socketAddress(path, failure: { .cannotConnect(path: path, $0) })
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else {
            let failure = Errno.current
            var status = stat()
            if failure == .connectionRefused && stat(path, &status) == 0 && status.st_mode & S_IFMT != S_IFSOCK {
                throw .cannotConnect(path: path, .notSocket)
            }
            throw .cannotConnect(path: path, failure)
        }
        return connection
    }

    /// `sockaddr_un` for `path`.
    static func socketAddress(_ path: String, failure: (Errno) -> VhostUserError) throws(VhostUserError) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw failure(.fileNameTooLong) }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        return address
    }

    /// Sends `message` with its descriptors. The descriptors stay the caller's.
    public func send(_ message: Message) throws(VhostUserError) {
        let bytes = message.encoded
        var sent = 0
        while sent < bytes.count {
            try wait(for: Int16(POLLOUT), what: "the socket to take \(message.request.map(String.init(describing:)) ?? "a message")")
            let fds = sent == 0 ? message.fileDescriptors : []
            let count = bytes.withUnsafeBytes { buffer in
                fds.withUnsafeBufferPointer { fdBuffer in
                    statetool_send_with_fds(socket.rawValue, buffer.baseAddress! + sent, buffer.count - sent, fdBuffer.baseAddress, Int32(fdBuffer.count))
                }
            }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                if errno == EPIPE || errno == ECONNRESET { throw .peerHungUp(waitingFor: "it to take \(message.request.map(String.init(describing:)) ?? "a message")") }
                throw .systemCall("sendmsg", .current)
            }
            sent += count
        }
    }

    /// Receives one message, or `nil` if the peer closed the connection cleanly
    /// between messages. `what` names the awaited message in errors.
    public func receive(waitingFor what: String) throws(VhostUserError) -> Message? {
        var descriptors: [Int32] = []
        guard let header = try read(count: Message.headerSize, descriptors: &descriptors, what: what, endAllowed: true) else {
            return nil
        }
        let (request, flags, size) = Message.decodeHeader(header[...])
        guard size <= Message.maximumPayloadSize else {
            descriptors.forEach { close($0) }
            throw .protocolViolation("\(what): payload size \(size) is above the \(Message.maximumPayloadSize)-byte limit")
        }
        let payload = try read(count: Int(size), descriptors: &descriptors, what: what, endAllowed: false) ?? []
        return Message(requestID: request, flags: MessageFlags(rawValue: flags), payload: payload, fileDescriptors: descriptors)
    }

    private func read(count: Int, descriptors: inout [Int32], what: String, endAllowed: Bool) throws(VhostUserError) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var received = 0
        while received < count {
            try wait(for: Int16(POLLIN), what: what)
            var fds = [Int32](repeating: -1, count: 32)
            var fdCount: Int32 = 0
            var truncated: Int32 = 0
            let start = received
            let result = bytes.withUnsafeMutableBytes { buffer in
                statetool_receive_with_fds(socket.rawValue, buffer.baseAddress! + start, count - start, &fds, 32, &fdCount, &truncated)
            }
            descriptors += fds.prefix(Int(fdCount))
            if result < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                if errno == ECONNRESET { throw .peerHungUp(waitingFor: what) }
                throw .systemCall("recvmsg", .current)
            }
            if truncated != 0 {
                descriptors.forEach { close($0) }
                throw .protocolViolation("\(what): more file descriptors than the 32 a message may carry")
            }
            if result == 0 {
                descriptors.forEach { close($0) }
                if endAllowed && received == 0 { return nil }
                throw .peerHungUp(waitingFor: what)
            }
            received += result
        }
        return bytes
    }

    /// Waits until the socket is ready for `events`, at most ``timeout``.
    private func wait(for events: Int16, what: String) throws(VhostUserError) {
        try Self.poll(socket.rawValue, events: events, timeout: timeout, what: what)
    }

    /// Waits until `fd` is ready for `events`, at most `timeout`.
    static func poll(_ fd: Int32, events: Int16, timeout: Duration, what: String) throws(VhostUserError) {
        let deadline = ContinuousClock.now + timeout
        while true {
            let left = deadline - ContinuousClock.now
            let milliseconds = max(0, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)
            var request = pollfd(fd: fd, events: events, revents: 0)
            let ready = Glibc.poll(&request, 1, Int32(clamping: milliseconds))
            if ready > 0 { return }
            if ready == 0 { throw .timedOut(waitingFor: what, seconds: timeout.components.seconds) }
            if errno != EINTR { throw .systemCall("poll", .current) }
        }
    }
}
