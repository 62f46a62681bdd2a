import SystemCalls

/// The vhost-user messages statetool speaks, in one place.
///
/// A message is a 12-byte header (request, flags, payload size; host byte
/// order, little-endian on every platform QEMU migrates on) and a payload.
/// Sources: QEMU's `docs/interop/vhost-user.rst` and `hw/virtio/vhost-user.c`,
/// rust-vmm's `vhost` crate.
public enum Request: UInt32, Sendable, CustomStringConvertible {
    /// `GET_FEATURES`: the virtio features the back-end offers.
    case getFeatures = 1
    /// `SET_FEATURES`: the virtio features the front-end accepts.
    case setFeatures = 2
    /// `SET_OWNER`: the front-end claims the back-end; a session's first message.
    case setOwner = 3
    /// `RESET_OWNER`: deprecated by the specification.
    case resetOwner = 4
    /// `SET_MEM_TABLE`: the guest's memory regions, one descriptor each.
    case setMemTable = 5
    /// `SET_LOG_BASE`: the shared memory for the dirty log.
    case setLogBase = 6
    /// `SET_LOG_FD`: the eventfd the back-end signals when it updated the dirty log.
    case setLogFD = 7
    /// `SET_VRING_NUM`: a virtqueue's size.
    case setVringNum = 8
    /// `SET_VRING_ADDR`: where a virtqueue's rings are.
    case setVringAddr = 9
    /// `SET_VRING_BASE`: the next available index a virtqueue starts at.
    case setVringBase = 10
    /// `GET_VRING_BASE`: stops a virtqueue and returns its next available index.
    case getVringBase = 11
    /// `SET_VRING_KICK`: the eventfd the front-end kicks a virtqueue with.
    case setVringKick = 12
    /// `SET_VRING_CALL`: the eventfd the back-end signals used buffers with.
    case setVringCall = 13
    /// `SET_VRING_ERR`: the eventfd the back-end signals a virtqueue's errors with.
    case setVringErr = 14
    /// `GET_PROTOCOL_FEATURES`: the ``ProtocolFeatures`` the back-end offers.
    case getProtocolFeatures = 15
    /// `SET_PROTOCOL_FEATURES`: the ``ProtocolFeatures`` the front-end accepts.
    case setProtocolFeatures = 16
    /// `GET_QUEUE_NUM`: the most queues the back-end supports (with `MQ`).
    case getQueueNum = 17
    /// `SET_VRING_ENABLE`: enables or disables a virtqueue.
    case setVringEnable = 18
    /// `SET_BACKEND_REQ_FD`: a socket for requests from the back-end.
    case setBackendRequestFD = 21
    /// `RESET_DEVICE`: resets the device to its initial state.
    case resetDevice = 34
    /// `GET_MAX_MEM_SLOTS`: the most memory regions the back-end takes.
    case getMaxMemSlots = 36
    /// `ADD_MEM_REG`: adds one guest memory region.
    case addMemReg = 37
    /// `REM_MEM_REG`: removes one guest memory region.
    case removeMemReg = 38
    /// `SET_STATUS`: the virtio device status byte.
    case setStatus = 39
    /// `GET_STATUS`: the virtio device status byte, as the back-end has it.
    case getStatus = 40
    /// `SET_DEVICE_STATE_FD`: a pipe to move the back-end's internal state
    /// through, in a ``TransferDirection``.
    case setDeviceStateFD = 42
    /// `CHECK_DEVICE_STATE`: whether the back-end's side of the state transfer
    /// succeeded.
    case checkDeviceState = 43

    /// The specification's name and the number: `GET_FEATURES (1)`.
    public var description: String {
        let names: [Request: String] = [
            .getFeatures: "GET_FEATURES", .setFeatures: "SET_FEATURES", .setOwner: "SET_OWNER",
            .resetOwner: "RESET_OWNER", .setMemTable: "SET_MEM_TABLE", .setLogBase: "SET_LOG_BASE",
            .setLogFD: "SET_LOG_FD", .setVringNum: "SET_VRING_NUM", .setVringAddr: "SET_VRING_ADDR",
            .setVringBase: "SET_VRING_BASE", .getVringBase: "GET_VRING_BASE", .setVringKick: "SET_VRING_KICK",
            .setVringCall: "SET_VRING_CALL", .setVringErr: "SET_VRING_ERR",
            .getProtocolFeatures: "GET_PROTOCOL_FEATURES", .setProtocolFeatures: "SET_PROTOCOL_FEATURES",
            .getQueueNum: "GET_QUEUE_NUM", .setVringEnable: "SET_VRING_ENABLE",
            .setBackendRequestFD: "SET_BACKEND_REQ_FD", .resetDevice: "RESET_DEVICE",
            .getMaxMemSlots: "GET_MAX_MEM_SLOTS", .addMemReg: "ADD_MEM_REG", .removeMemReg: "REM_MEM_REG",
            .setStatus: "SET_STATUS", .getStatus: "GET_STATUS", .setDeviceStateFD: "SET_DEVICE_STATE_FD",
            .checkDeviceState: "CHECK_DEVICE_STATE",
        ]
        return "\(names[self]!) (\(rawValue))"
    }
}

/// The flags word of a message header.
public struct MessageFlags: OptionSet, Hashable, Sendable {
    /// The flags word as sent.
    public let rawValue: UInt32
    /// The flags of the word `rawValue`.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Bits 0-1: the protocol version, always 1.
    public static let version1 = MessageFlags(rawValue: 0x1)
    /// A reply.
    public static let reply = MessageFlags(rawValue: 0x4)
    /// The sender wants an acknowledgement (with REPLY_ACK negotiated).
    public static let needReply = MessageFlags(rawValue: 0x8)

    /// What QEMU requires of every reply: exactly version 1 and REPLY (`0x5`).
    public static let validReply: MessageFlags = [.version1, .reply]
}

/// Protocol feature bits (GET/SET_PROTOCOL_FEATURES).
public struct ProtocolFeatures: OptionSet, Hashable, Sendable {
    /// The feature bits as sent.
    public let rawValue: UInt64
    /// The features of the bits `rawValue`.
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// `MQ` (bit 0): more than one queue; GET_QUEUE_NUM is available.
    public static let multipleQueues = ProtocolFeatures(rawValue: 1 << 0)
    /// `LOG_SHMFD` (bit 1): the dirty log is shared memory (SET_LOG_BASE with a
    /// descriptor).
    public static let logSharedMemoryFD = ProtocolFeatures(rawValue: 1 << 1)
    /// `REPLY_ACK` (bit 3): a request with ``MessageFlags/needReply`` gets an
    /// acknowledgement.
    public static let replyAck = ProtocolFeatures(rawValue: 1 << 3)
    /// `BACKEND_REQ` (bit 5): the back-end may send requests of its own
    /// (SET_BACKEND_REQ_FD).
    public static let backendRequests = ProtocolFeatures(rawValue: 1 << 5)
    /// `RESET_DEVICE` (bit 13): RESET_DEVICE is available.
    public static let resetDevice = ProtocolFeatures(rawValue: 1 << 13)
    /// `CONFIGURE_MEM_SLOTS` (bit 15): GET_MAX_MEM_SLOTS, ADD_MEM_REG and
    /// REM_MEM_REG are available.
    public static let configureMemorySlots = ProtocolFeatures(rawValue: 1 << 15)
    /// `STATUS` (bit 16): SET_STATUS and GET_STATUS are available.
    public static let status = ProtocolFeatures(rawValue: 1 << 16)
    /// `DEVICE_STATE` (bit 19): SET_DEVICE_STATE_FD and CHECK_DEVICE_STATE are
    /// available: the back-end's state can be moved.
    public static let deviceState = ProtocolFeatures(rawValue: 1 << 19)

    /// The bits statetool's front-end negotiates when offered: the ones whose
    /// follow-up messages it sends (GET_QUEUE_NUM, GET_MAX_MEM_SLOTS) or that
    /// oblige it to nothing (REPLY_ACK, LOG_SHMFD), and DEVICE_STATE.
    public static let understoodByFrontEnd: ProtocolFeatures = [
        .multipleQueues, .logSharedMemoryFD, .replyAck, .configureMemorySlots, .deviceState,
    ]
}

/// Virtio feature bits (GET/SET_FEATURES) that matter here.
public enum VirtioFeatures {
    /// `VHOST_USER_F_PROTOCOL_FEATURES`: GET_PROTOCOL_FEATURES is available.
    public static let protocolFeatures: UInt64 = 1 << 30
    /// `VHOST_F_LOG_ALL`: dirty logging, the start of a migration.
    public static let logAll: UInt64 = 1 << 26
    /// `VIRTIO_F_VERSION_1`.
    public static let version1: UInt64 = 1 << 32
}

/// Which way SET_DEVICE_STATE_FD moves the state.
public enum TransferDirection: UInt32, Sendable, CustomStringConvertible {
    /// Back-end to front-end, on the migration source.
    case save = 0
    /// Front-end to back-end, on the destination.
    case load = 1

    /// `SAVE` or `LOAD`, as the specification names them.
    public var description: String { self == .save ? "SAVE" : "LOAD" }
}

/// When the transfer happens: only STOPPED (0) exists.
public enum TransferPhase: UInt32, Sendable {
    /// The device is stopped: the only phase there is.
    case stopped = 0
}

/// The reply word of SET_DEVICE_STATE_FD.
public enum DeviceStateFDReply {
    /// Bits 0-7: 0 for success, else an error code.
    public static func errorCode(_ value: UInt64) -> UInt64 { value & 0xff }
    /// Bit 8: no file descriptor comes with the reply (use your own pipe).
    public static let noFileDescriptor: UInt64 = 0x100
}

/// One message: header fields, payload, attached file descriptors.
public struct Message: Sendable {
    /// The request id as received (it may be one statetool does not know).
    public var requestID: UInt32
    /// The header's flags word.
    public var flags: MessageFlags
    /// The payload, as many bytes as the header's size says.
    public var payload: [UInt8]
    /// Attached descriptors, owned by the message: a sender hands them over
    /// with it, a receiver takes out those it keeps; the rest are closed with it.
    public var descriptors: AttachedDescriptors

    /// Bytes in a header.
    public static let headerSize = 12
    /// The largest payload accepted (rust-vmm's limit; QEMU's own is larger).
    public static let maximumPayloadSize = 4096

    /// A message of any request id and flags.
    public init(requestID: UInt32, flags: MessageFlags, payload: [UInt8] = [], descriptors: AttachedDescriptors = AttachedDescriptors()) {
        self.requestID = requestID
        self.flags = flags
        self.payload = payload
        self.descriptors = descriptors
    }

    /// A request from the front-end.
    public init(_ request: Request, payload: [UInt8] = [], descriptors: AttachedDescriptors = AttachedDescriptors(), needReply: Bool = false) {
        self.init(requestID: request.rawValue, flags: needReply ? [.version1, .needReply] : .version1,
                  payload: payload, descriptors: descriptors)
    }

    /// A reply from the back-end.
    public static func reply(to request: UInt32, payload: [UInt8], descriptors: AttachedDescriptors = AttachedDescriptors()) -> Message {
        Message(requestID: request, flags: .validReply, payload: payload, descriptors: descriptors)
    }

    /// The message as `-v` logs it: name, flags, size, value, descriptors.
    public var logLine: String {
        let name = request.map(String.init(describing:)) ?? "request \(requestID)"
        let value = u64.map { " value 0x\(String($0, radix: 16))" } ?? ""
        let attached = descriptors.isEmpty ? "" : " + \(descriptors.count) fd"
        return "\(name) flags 0x\(String(flags.rawValue, radix: 16)) size \(payload.count)\(value)\(attached)"
    }

    /// The request, if statetool knows it.
    public var request: Request? { Request(rawValue: requestID) }

    /// The header and payload as sent.
    public var encoded: [UInt8] {
        requestID.bytes(endianness: .little) + flags.rawValue.bytes(endianness: .little) + UInt32(payload.count).bytes(endianness: .little) + payload
    }

    /// The payload read as one u64, if it is exactly 8 bytes.
    public var u64: UInt64? {
        payload.count == 8 ? payload.readInteger(endianness: .little) : nil
    }

    /// The 8-byte little-endian payload for `value`.
    public static func u64Payload(_ value: UInt64) -> [UInt8] {
        value.bytes(endianness: .little)
    }

    /// Reads a header's three fields.
    static func decodeHeader(_ bytes: ArraySlice<UInt8>) -> (request: UInt32, flags: UInt32, size: UInt32) {
        let start = bytes.startIndex
        let word = { (offset: Int) in bytes[(start + offset)...].readInteger(endianness: .little, as: UInt32.self) ?? 0 }
        return (word(0), word(4), word(8))
    }
}
