import SystemCalls
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
    /// The protocol features the back-end offered (GET_PROTOCOL_FEATURES).
    public private(set) var offeredProtocolFeatures = ProtocolFeatures()
    /// The protocol features negotiated: those offered that the front-end
    /// understands (``ProtocolFeatures/understoodByFrontEnd``).
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
    public func startTransfer(_ direction: TransferDirection) throws(VhostUserError) -> OwnedDescriptor {
        let ends = try VhostUserError.calling { () throws(SystemCallError) in try Pipes.make() }
        let theirs: OwnedDescriptor
        let ours: OwnedDescriptor
        if direction == .load {
            theirs = ends.read
            ours = ends.write
        } else {
            theirs = ends.write
            ours = ends.read
        }
        Pipes.grow(ours.descriptor)
        let parameters = direction.rawValue.bytes(endianness: .little) + TransferPhase.stopped.rawValue.bytes(endianness: .little)
        // Ownership of the back-end's end passes with the message, as in QEMU:
        // our copy is closed with the message, whether or not the send worked.
        try send(Message(.setDeviceStateFD, payload: parameters, descriptors: AttachedDescriptors(theirs)))
        let reply = try receiveReply(to: .setDeviceStateFD, allowingDescriptors: 1)
        guard let value = reply.u64 else {
            throw .protocolViolation("SET_DEVICE_STATE_FD reply: expected 8 bytes, got \(reply.payload.count)")
        }
        if DeviceStateFDReply.errorCode(value) != 0 {
            throw .transferRejected(reply: value)
        }
        if value & DeviceStateFDReply.noFileDescriptor != 0 {
            return ours  // QEMU ignores a descriptor sent despite the flag; it closes with the reply
        }
        guard let own = reply.descriptors.take() else {
            throw .protocolViolation("SET_DEVICE_STATE_FD reply 0x\(String(value, radix: 16)) promises a file descriptor, but none came")
        }
        log("  using the back-end's own transfer descriptor")
        return own
    }

    /// CHECK_DEVICE_STATE: the back-end's verdict, 0 meaning success.
    public func checkDeviceState() throws(VhostUserError) -> UInt64 {
        try callForU64(.checkDeviceState)
    }

    /// How long each wait may last.
    public var timeout: Duration { connection.timeout }

    private func send(_ message: Message) throws(VhostUserError) {
        log("-> \(message.logLine)")
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
        log("<- \(reply.logLine)")
        var problem: String?
        if reply.flags != .validReply {
            problem = "flags 0x\(String(reply.flags.rawValue, radix: 16)) instead of 0x5 (version 1 + reply)"
        } else if reply.requestID != request.rawValue {
            problem = "request id \(reply.requestID) instead of \(request.rawValue)"
        } else if reply.descriptors.count > allowed {
            problem = "\(reply.descriptors.count) file descriptors attached, at most \(allowed) expected"
        }
        if let problem {
            throw .protocolViolation("reply to \(request): \(problem)")
        }
        return reply
    }
}
