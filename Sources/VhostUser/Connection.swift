import StateStream
import SystemCalls
import SystemPackage

/// A vhost-user connection: a Unix stream socket that carries messages and
/// file descriptors (`SCM_RIGHTS`).
///
/// Every wait is bounded by ``timeout``; sends continue after partial writes
/// and never raise SIGPIPE (`MSG_NOSIGNAL`). Descriptors travel with the first
/// byte of a message, as QEMU, libvhost-user and rust-vmm send them.
public final class Connection {
    private let owned: OwnedDescriptor
    /// How long any one wait may last.
    public let timeout: Duration

    /// Wraps a connected stream socket (one end of a `socketpair`, say); the
    /// connection owns it and closes it.
    public init(socket: consuming OwnedDescriptor, timeout: Duration) {
        self.owned = socket
        self.timeout = timeout
    }

    /// The socket.
    public var socket: FileDescriptor { owned.descriptor }

    /// Two connections joined to each other (`socketpair`): a front-end and a
    /// back-end in one process.
    public static func pair(timeout: Duration) throws(VhostUserError) -> (Connection, Connection) {
        let ends = try VhostUserError.calling { () throws(SystemCallError) in try UnixSocket.pair() }
        return (Connection(socket: ends.first, timeout: timeout), Connection(socket: ends.second, timeout: timeout))
    }

    /// Connects to the back-end listening at `path`.
    public static func connect(to path: String, timeout: Duration) throws(VhostUserError) -> Connection {
        let socket = try VhostUserError.calling { () throws(SystemCallError) in try UnixSocket.stream() }
        do {
            try UnixSocket.connect(socket, to: path)
        } catch {
            // Connecting to something that is not a socket is refused, like a socket nobody listens on.
            if error.errno == .connectionRefused, let type = Files.type(at: path), type != .socket {
                throw .cannotConnect(path: path, .notSocket)
            }
            throw .cannotConnect(path: path, error.errno)
        }
        return Connection(socket: socket, timeout: timeout)
    }

    /// Sends `message` with its descriptors.
    public func send(_ message: Message) throws(VhostUserError) {
        let bytes = message.encoded
        let what = message.request.map(String.init(describing:)) ?? "a message"
        let descriptors = message.descriptors.rawValues
        var sent = 0
        while sent < bytes.count {
            try wait(for: .writable, what: "the socket to take \(what)")
            let attached = sent == 0 ? descriptors : []
            let result = bytes.withUnsafeBytes { buffer in
                Result { () throws(SystemCallError) in
                    try UnixSocket.send(socket, UnsafeRawBufferPointer(rebasing: buffer[sent...]), attaching: attached)
                }
            }
            do {
                sent += try result.get()
            } catch {
                switch error.errno {
                case .resourceTemporarilyUnavailable: continue
                case .brokenPipe, .connectionReset: throw .peerHungUp(waitingFor: "it to take \(what)")
                default: throw .systemCall(error)
                }
            }
        }
    }

    /// Receives one message, or `nil` if the peer closed the connection cleanly
    /// between messages. `what` names the awaited message in errors.
    public func receive(waitingFor what: String) throws(VhostUserError) -> Message? {
        let descriptors = AttachedDescriptors()
        guard let header = try read(count: Message.headerSize, descriptors: descriptors, what: what, endAllowed: true) else {
            return nil
        }
        let (request, flags, size) = Message.decodeHeader(header[...])
        guard size <= Message.maximumPayloadSize else {
            throw .protocolViolation("\(what): payload size \(size) is above the \(Message.maximumPayloadSize)-byte limit")
        }
        let payload = try read(count: Int(size), descriptors: descriptors, what: what, endAllowed: false) ?? []
        return Message(requestID: request, flags: MessageFlags(rawValue: flags), payload: payload, descriptors: descriptors)
    }

    private func read(count: Int, descriptors: AttachedDescriptors, what: String, endAllowed: Bool) throws(VhostUserError) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var received = 0
        while received < count {
            try wait(for: .readable, what: what)
            let start = received
            let attempt = bytes.withUnsafeMutableBytes { buffer in
                Result { () throws(SystemCallError) in
                    try UnixSocket.receive(socket, into: UnsafeMutableRawBufferPointer(rebasing: buffer[start...]))
                }
            }
            let result: UnixSocket.Received
            do {
                result = try attempt.get()
            } catch {
                switch error.errno {
                case .resourceTemporarilyUnavailable: continue
                case .connectionReset: throw .peerHungUp(waitingFor: what)
                default: throw .systemCall(error)
                }
            }
            descriptors.append(contentsOf: result.descriptors)
            if result.descriptorsTruncated {
                throw .protocolViolation("\(what): more file descriptors than the \(UnixSocket.maximumDescriptorsPerMessage) a message may carry")
            }
            if result.count == 0 {
                if endAllowed && received == 0 { return nil }
                throw .peerHungUp(waitingFor: what)
            }
            received += result.count
        }
        return bytes
    }

    /// Waits until the socket is ready, at most ``timeout``.
    private func wait(for event: Readiness.Event, what: String) throws(VhostUserError) {
        try Self.wait(for: event, on: socket, timeout: timeout, what: what)
    }

    /// Waits until `descriptor` is ready for `event`, at most `timeout`;
    /// `what` names what is awaited when the time runs out.
    static func wait(for event: Readiness.Event, on descriptor: FileDescriptor, timeout: Duration, what: String) throws(VhostUserError) {
        let ready = try VhostUserError.calling { () throws(SystemCallError) in
            try Readiness.wait(for: event, on: descriptor, timeout: timeout)
        }
        if !ready { throw .timedOut(waitingFor: what, seconds: timeout.components.seconds) }
    }
}
