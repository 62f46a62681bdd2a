import Dispatch
import StateStream
import SystemCalls
import SystemPackage

/// What a back-end does with the state itself; the protocol around it is
/// ``BackEnd``'s.
public protocol DeviceState: Sendable {
    /// Reads the state from `pipe` to its end (LOAD, on the destination).
    /// Returns the CHECK_DEVICE_STATE value: 0 for success. The pipe is the
    /// back-end's; it is closed when this returns.
    func load(from pipe: FileDescriptor) -> UInt64
    /// Writes the state into `pipe` (SAVE, on the source). Returns the
    /// CHECK_DEVICE_STATE value.
    func save(into pipe: FileDescriptor) -> UInt64
}

/// How a back-end answers: honest by default, or with the faults real
/// back-ends show, for testing front-ends.
public struct BackEndBehaviour: Sendable {
    /// Offer VHOST_USER_PROTOCOL_F_DEVICE_STATE.
    public var offersDeviceState = true
    /// Answer SET_DEVICE_STATE_FD with a pipe of its own (reply 0 + fd).
    public var returnsOwnDescriptor = false
    /// Refuse SET_DEVICE_STATE_FD (reply 0x101).
    public var rejectsTransfer = false

    /// The honest behaviour: DEVICE_STATE offered, the front-end's pipe used,
    /// every transfer accepted.
    public init() {}
}

/// The back-end side of vhost-user, enough for real QEMU to initialise a
/// vhost-user-fs device and migrate it: it answers every request QEMU sends
/// to a device that is never started, and runs state transfers on a thread
/// of their own (QEMU touches the pipe only after the reply).
public final class BackEnd: @unchecked Sendable {
    private let connection: Connection
    private let device: any DeviceState
    private let behaviour: BackEndBehaviour
    private let log: (String) -> Void
    private var acknowledgesRequests = false
    private var transfer: (group: DispatchGroup, result: ResultBox)?

    /// Virtio features offered: protocol features, dirty logging, VERSION_1.
    public static let features = VirtioFeatures.protocolFeatures | VirtioFeatures.logAll | VirtioFeatures.version1

    /// Serves `connection`, keeping the state in `device`.
    public init(connection: Connection, device: any DeviceState, behaviour: BackEndBehaviour, log: @escaping (String) -> Void = { _ in }) {
        self.connection = connection
        self.device = device
        self.behaviour = behaviour
        self.log = log
    }

    /// The protocol features offered.
    public var protocolFeatures: ProtocolFeatures {
        var offered: ProtocolFeatures = [.multipleQueues, .logSharedMemoryFD, .replyAck, .configureMemorySlots, .resetDevice]
        if behaviour.offersDeviceState { offered.insert(.deviceState) }
        return offered
    }

    /// Answers requests until the front-end hangs up.
    public func run() throws(VhostUserError) {
        while let message = try receiveRequest() {
            try handle(message)
        }
        transfer?.group.wait()
    }

    private func receiveRequest() throws(VhostUserError) -> Message? {
        // A back-end waits for its front-end as long as it takes.
        while true {
            do {
                return try connection.receive(waitingFor: "the next request")
            } catch .timedOut {
                continue
            }
        }
    }

    private func handle(_ message: Message) throws(VhostUserError) {
        let name = message.request.map(String.init(describing:)) ?? "request \(message.requestID)"
        log("<- \(message.logLine)")
        guard message.flags.subtracting(.needReply) == .version1 else {
            throw .protocolViolation("\(name): flags 0x\(String(message.flags.rawValue, radix: 16)), expected version 1 with no reserved bits")
        }
        switch message.request {
        case .getFeatures:
            try reply(to: message, value: Self.features)
        case .getProtocolFeatures:
            try reply(to: message, value: protocolFeatures.rawValue)
        case .setProtocolFeatures:
            acknowledgesRequests = ProtocolFeatures(rawValue: message.u64 ?? 0).contains(.replyAck)
            try acknowledge(message)
        case .getQueueNum:
            try reply(to: message, value: 2)
        case .getMaxMemSlots:
            try reply(to: message, value: 32)
        case .getStatus:
            try reply(to: message, value: 0)
        case .getVringBase:
            // {u32 index, u32 num}: the ring never ran, so its next index is 0.
            try connection.send(.reply(to: message.requestID, payload: Array(message.payload.prefix(4)) + [0, 0, 0, 0]))
        case .setDeviceStateFD:
            try startTransfer(message)
        case .checkDeviceState:
            let result = finishTransfer()
            try reply(to: message, value: result)
        default:
            try acknowledge(message)  // descriptors it carries (kick, call, memory) close with it
        }
    }

    private func reply(to message: Message, value: UInt64, descriptors: AttachedDescriptors = AttachedDescriptors()) throws(VhostUserError) {
        let reply = Message.reply(to: message.requestID, payload: Message.u64Payload(value), descriptors: descriptors)
        log("-> \(reply.logLine)")
        try connection.send(reply)
    }

    /// The REPLY_ACK answer to a request without a reply of its own.
    private func acknowledge(_ message: Message) throws(VhostUserError) {
        if acknowledgesRequests && message.flags.contains(.needReply) {
            try reply(to: message, value: 0)
        }
    }

    private func startTransfer(_ message: Message) throws(VhostUserError) {
        guard message.payload.count == 8, message.descriptors.count == 1, let given = message.descriptors.take() else {
            throw .protocolViolation("SET_DEVICE_STATE_FD: expected 8 bytes and 1 fd, got \(message.payload.count) bytes and \(message.descriptors.count) fds")
        }
        let directionValue = message.payload[0..<4].readInteger(endianness: .little, as: UInt32.self) ?? 0
        let phase = message.payload[4..<8].readInteger(endianness: .little, as: UInt32.self) ?? 0
        guard !behaviour.rejectsTransfer, let transferDirection = TransferDirection(rawValue: directionValue),
              phase == TransferPhase.stopped.rawValue
        else {
            return try reply(to: message, value: DeviceStateFDReply.noFileDescriptor | 1)
        }
        let pipe: OwnedDescriptor
        let handedBack = AttachedDescriptors()
        if behaviour.returnsOwnDescriptor {
            _ = consume given
            let ends = try VhostUserError.calling { () throws(SystemCallError) in try Pipes.make() }
            if transferDirection == .load {
                pipe = ends.read
                handedBack.append(ends.write)
            } else {
                pipe = ends.write
                handedBack.append(ends.read)
            }
        } else {
            pipe = given
        }
        let group = DispatchGroup()
        let box = ResultBox()
        let device = self.device
        let raw = pipe.release()  // the transfer thread owns it from here
        DispatchQueue.global().async(group: group) {
            let pipe = OwnedDescriptor(taking: raw)
            box.value = transferDirection == .load ? device.load(from: pipe.descriptor) : device.save(into: pipe.descriptor)
        }
        transfer = (group, box)
        // The front-end gets its own copy of our descriptor; ours closes with the reply, sent or not.
        try reply(to: message, value: handedBack.isEmpty ? DeviceStateFDReply.noFileDescriptor : 0, descriptors: handedBack)
    }

    /// Waits for the transfer, as virtiofsd joins its worker in CHECK.
    private func finishTransfer() -> UInt64 {
        guard let transfer else { return 1 }
        transfer.group.wait()
        self.transfer = nil
        return transfer.result.value
    }
}

/// A transfer thread's result.
private final class ResultBox: @unchecked Sendable {
    var value: UInt64 = 1
}

/// A listening Unix socket that back-ends accept front-ends on.
public final class Listener {
    /// The socket's path; removed when the listener goes away.
    public let path: String
    private let socket: OwnedDescriptor

    /// Listens on `path`, replacing a stale socket left there.
    public init(path: String) throws(VhostUserError) {
        if Files.type(at: path) == .socket { try? Files.unlink(path) }
        do {
            let socket = try UnixSocket.stream()
            try UnixSocket.listen(socket, at: path)
            self.socket = socket
        } catch {
            throw .cannotListen(path: path, error.errno)
        }
        self.path = path
    }

    deinit {
        try? Files.unlink(path)
    }

    /// Waits for the next front-end.
    public func accept(timeout: Duration) throws(VhostUserError) -> Connection {
        let accepted = try VhostUserError.calling { () throws(SystemCallError) in try UnixSocket.accept(socket) }
        return Connection(socket: accepted, timeout: timeout)
    }
}
