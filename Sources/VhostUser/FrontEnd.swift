import CStateToolShims
import Glibc
import SystemPackage

/// The front-end side of vhost-user, as QEMU plays it for a vhost-user-fs
/// device: initialisation, then a device-state transfer.
///
/// Replies are checked as strictly as QEMU checks them: flags exactly `0x5`,
/// the request id that was sent, the expected size, and no descriptors except
/// where one may come.
public struct FrontEnd: ~Copyable {
    private let connection: Connection
    /// What the back-end offered and what was negotiated.
    public private(set) var offeredFeatures: UInt64 = 0
    public private(set) var offeredProtocolFeatures = ProtocolFeatures()
    public private(set) var protocolFeatures = ProtocolFeatures()
    /// Called with a line per message sent and received, for `-v`.
    private let log: (String) -> Void

    /// Connects to the back-end at `path`.
    public init(socketPath path: String, timeout: Duration, log: @escaping (String) -> Void = { _ in }) throws(VhostUserError) {
        self.init(connection: try Connection.connect(to: path, timeout: timeout), log: log)
    }

    /// Talks to the back-end at the other end of `connection`.
    public init(connection: Connection, log: @escaping (String) -> Void = { _ in }) {
        self.connection = connection
        self.log = log
    }

    /// QEMU's initialisation for vhost-user-fs (`vhost_dev_init`):
    /// GET_FEATURES, GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES (the offered
    /// bits statetool understands), GET_QUEUE_NUM and GET_MAX_MEM_SLOTS when
    /// negotiated, SET_OWNER, GET_FEATURES.
    ///
    /// - Throws: ``VhostUserError/noProtocolFeatures(offered:)`` or
    ///   ``VhostUserError/noDeviceState(offered:)`` when the back-end cannot
    ///   transfer state, or any protocol or connection error.
    public mutating func initialize() throws(VhostUserError) {
        offeredFeatures = try callForU64(.getFeatures)
        guard offeredFeatures & VirtioFeatures.protocolFeatures != 0 else { throw .noProtocolFeatures(offered: offeredFeatures) }
        offeredProtocolFeatures = ProtocolFeatures(rawValue: try callForU64(.getProtocolFeatures))
        guard offeredProtocolFeatures.contains(.deviceState) else { throw .noDeviceState(offered: offeredProtocolFeatures.rawValue) }
        protocolFeatures = offeredProtocolFeatures.intersection(.understoodByFrontEnd)
        try send(Message(.setProtocolFeatures, payload: Message.u64Payload(protocolFeatures.rawValue)))
        if protocolFeatures.contains(.multipleQueues) { _ = try callForU64(.getQueueNum) }
        if protocolFeatures.contains(.configureMemorySlots) { _ = try callForU64(.getMaxMemSlots) }
        try send(Message(.setOwner))
        _ = try callForU64(.getFeatures)
    }

    /// Starts a device-state transfer (SET_DEVICE_STATE_FD, phase STOPPED):
    /// hands the back-end its end of a new pipe and returns the end to use,
    /// which is the back-end's own descriptor when it sends one.
    public func startTransfer(_ direction: TransferDirection) throws(VhostUserError) -> FileDescriptor {
        let ends = try Pipe.make()
        let (theirs, ours) = direction == .load ? (ends.read, ends.write) : (ends.write, ends.read)
        _ = statetoolGrowPipe(ours)
        let parameters = direction.rawValue.bytes(endianness: .little) + TransferPhase.stopped.rawValue.bytes(endianness: .little)
        // Ownership of the back-end's end passes with the message, as in QEMU:
        // our copy is closed whether or not the send worked.
        let sent = Result { () throws(VhostUserError) in
            try send(Message(.setDeviceStateFD, payload: parameters, fileDescriptors: [theirs]))
        }
        close(theirs)
        let reply: Message
        do {
            try sent.get()
            reply = try receiveReply(to: .setDeviceStateFD, allowingDescriptors: 1)
        } catch {
            close(ours)
            throw error
        }
        guard let value = reply.u64 else {
            close(ours)
            reply.fileDescriptors.forEach { close($0) }
            throw .protocolViolation("SET_DEVICE_STATE_FD reply: expected 8 bytes, got \(reply.payload.count)")
        }
        if DeviceStateFDReply.errorCode(value) != 0 {
            close(ours)
            reply.fileDescriptors.forEach { close($0) }
            throw .transferRejected(reply: value)
        }
        if value & DeviceStateFDReply.noFileDescriptor != 0 {
            reply.fileDescriptors.forEach { close($0) }  // QEMU ignores an fd sent despite the flag
            return FileDescriptor(rawValue: ours)
        }
        guard let own = reply.fileDescriptors.first else {
            close(ours)
            throw .protocolViolation("SET_DEVICE_STATE_FD reply 0x\(String(value, radix: 16)) promises a file descriptor, but none came")
        }
        close(ours)
        log("  using the back-end's own transfer descriptor")
        return FileDescriptor(rawValue: own)
    }

    /// CHECK_DEVICE_STATE: the back-end's verdict, 0 meaning success.
    public func checkDeviceState() throws(VhostUserError) -> UInt64 {
        try callForU64(.checkDeviceState)
    }

    /// How long each wait may last.
    public var timeout: Duration { connection.timeout }

    private func send(_ message: Message) throws(VhostUserError) {
        log("-> \(message.request.map(String.init(describing:)) ?? String(message.requestID)) flags 0x\(String(message.flags.rawValue, radix: 16)) size \(message.payload.count)\(message.fileDescriptors.isEmpty ? "" : " + \(message.fileDescriptors.count) fd")")
        try connection.send(message)
    }

    private func callForU64(_ request: Request) throws(VhostUserError) -> UInt64 {
        try send(Message(request))
        let reply = try receiveReply(to: request, allowingDescriptors: 0)
        guard let value = reply.u64 else {
            throw .protocolViolation("\(request) reply: expected 8 bytes, got \(reply.payload.count)")
        }
        return value
    }

    private func receiveReply(to request: Request, allowingDescriptors allowed: Int) throws(VhostUserError) -> Message {
        guard let reply = try connection.receive(waitingFor: "the reply to \(request)") else {
            throw .peerHungUp(waitingFor: "the reply to \(request)")
        }
        log("<- \(reply.request.map(String.init(describing:)) ?? String(reply.requestID)) flags 0x\(String(reply.flags.rawValue, radix: 16)) size \(reply.payload.count)\(reply.u64.map { " value 0x\(String($0, radix: 16))" } ?? "")\(reply.fileDescriptors.isEmpty ? "" : " + \(reply.fileDescriptors.count) fd")")
        var problem: String?
        if reply.flags != .validReply {
            problem = "flags 0x\(String(reply.flags.rawValue, radix: 16)) instead of 0x5 (version 1 + reply)"
        } else if reply.requestID != request.rawValue {
            problem = "request id \(reply.requestID) instead of \(request.rawValue)"
        } else if reply.fileDescriptors.count > allowed {
            problem = "\(reply.fileDescriptors.count) file descriptors attached, at most \(allowed) expected"
        }
        if let problem {
            reply.fileDescriptors.forEach { close($0) }
            throw .protocolViolation("reply to \(request): \(problem)")
        }
        return reply
    }
}

/// Pipes for state transfers.
enum Pipe {
    /// A new close-on-exec pipe.
    static func make() throws(VhostUserError) -> (read: Int32, write: Int32) {
        var ends: (Int32, Int32) = (-1, -1)
        let created = withUnsafeMutablePointer(to: &ends) { $0.withMemoryRebound(to: Int32.self, capacity: 2) { statetool_pipe($0) } }
        guard created == 0 else { throw .systemCall("pipe2", .current) }
        return ends
    }
}

/// Grows a pipe to 1 MiB (the kernel may allow less); returns the new size or -1.
@discardableResult
func statetoolGrowPipe(_ fd: Int32) -> Int32 {
    statetool_set_pipe_size(fd, 1 << 20)
}
