import CStateToolShims
import Dispatch
import Glibc
import StateStream
import SystemPackage

/// What a back-end does with the state itself; the protocol around it is
/// ``BackEnd``'s.
public protocol DeviceState: Sendable {
    /// Reads the state from `pipe` to its end (LOAD, on the destination).
    /// Returns the CHECK_DEVICE_STATE value: 0 for success.
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
        log("<- \(name) flags 0x\(String(message.flags.rawValue, radix: 16)) size \(message.payload.count)\(message.fileDescriptors.isEmpty ? "" : " + \(message.fileDescriptors.count) fd")")
        guard message.flags.subtracting(.needReply) == .version1 else {
            message.fileDescriptors.forEach { close($0) }
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
            message.fileDescriptors.forEach { close($0) }
            try acknowledge(message)
        }
    }

    private func reply(to message: Message, value: UInt64, descriptors: [Int32] = []) throws(VhostUserError) {
        log("-> reply 0x\(String(value, radix: 16))\(descriptors.isEmpty ? "" : " + \(descriptors.count) fd")")
        try connection.send(.reply(to: message.requestID, payload: Message.u64Payload(value), fileDescriptors: descriptors))
    }

    /// The REPLY_ACK answer to a request without a reply of its own.
    private func acknowledge(_ message: Message) throws(VhostUserError) {
        if acknowledgesRequests && message.flags.contains(.needReply) {
            try reply(to: message, value: 0)
        }
    }

    private func startTransfer(_ message: Message) throws(VhostUserError) {
        guard message.payload.count == 8, message.fileDescriptors.count == 1 else {
            message.fileDescriptors.forEach { close($0) }
            throw .protocolViolation("SET_DEVICE_STATE_FD: expected 8 bytes and 1 fd, got \(message.payload.count) bytes and \(message.fileDescriptors.count) fds")
        }
        let directionValue = message.payload[0..<4].readInteger(endianness: .little, as: UInt32.self) ?? 0
        let phase = message.payload[4..<8].readInteger(endianness: .little, as: UInt32.self) ?? 0
        guard !behaviour.rejectsTransfer, let transferDirection = TransferDirection(rawValue: directionValue),
              phase == TransferPhase.stopped.rawValue
        else {
            close(message.fileDescriptors[0])
            return try reply(to: message, value: DeviceStateFDReply.noFileDescriptor | 1)
        }
        var pipeEnd = message.fileDescriptors[0]
        var replyDescriptors: [Int32] = []
        if behaviour.returnsOwnDescriptor {
            close(pipeEnd)
            let ends = try Pipe.make()
            (pipeEnd, replyDescriptors) = transferDirection == .load ? (ends.read, [ends.write]) : (ends.write, [ends.read])
        }
        let pipe = FileDescriptor(rawValue: pipeEnd)
        let group = DispatchGroup()
        let box = ResultBox()
        let device = self.device
        DispatchQueue.global().async(group: group) {
            box.value = transferDirection == .load ? device.load(from: pipe) : device.save(into: pipe)
            try? pipe.close()
        }
        transfer = (group, box)
        // The front-end gets its own copy of our descriptor with the reply, sent or not.
        defer { replyDescriptors.forEach { close($0) } }
        try reply(to: message, value: replyDescriptors.isEmpty ? DeviceStateFDReply.noFileDescriptor : 0, descriptors: replyDescriptors)
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
    private let socket: FileDescriptor

    /// Listens on `path`, replacing a stale socket left there.
    public init(path: String) throws(VhostUserError) {
        var status = stat()
        if lstat(path, &status) == 0 && status.st_mode & S_IFMT == S_IFSOCK { unlink(path) }
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .cannotListen(path: path, .current) }
        socket = FileDescriptor(rawValue: fd)
        self.path = path
        var address = try Connection.socketAddress(path, failure: { .cannotListen(path: path, $0) })
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(fd, 4) == 0 else {
            let failure = Errno.current
            try? socket.close()
            throw .cannotListen(path: path, failure)
        }
    }

    deinit {
        try? socket.close()
        unlink(path)
    }

    /// Waits for the next front-end.
    public func accept(timeout: Duration) throws(VhostUserError) -> Connection {
        while true {
            let fd = Glibc.accept(socket.rawValue, nil, nil)
            if fd >= 0 {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                return Connection(socket: FileDescriptor(rawValue: fd), timeout: timeout)
            }
            if errno != EINTR { throw .systemCall("accept", .current) }
        }
    }
}
