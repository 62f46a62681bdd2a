import SystemCalls

/// The vhost-user messages statetool speaks, in one place.
///
/// A message is a 12-byte header (request, flags, payload size; host byte
/// order, little-endian on every platform QEMU migrates on) and a payload.
/// Sources: QEMU's `docs/interop/vhost-user.rst` and `hw/virtio/vhost-user.c`,
/// rust-vmm's `vhost` crate.
public enum Request: UInt32, Sendable, CustomStringConvertible {
    case getFeatures = 1
    case setFeatures = 2
    case setOwner = 3
    case resetOwner = 4
    case setMemTable = 5
    case setLogBase = 6
    case setLogFD = 7
    case setVringNum = 8
    case setVringAddr = 9
    case setVringBase = 10
    case getVringBase = 11
    case setVringKick = 12
    case setVringCall = 13
    case setVringErr = 14
    case getProtocolFeatures = 15
    case setProtocolFeatures = 16
    case getQueueNum = 17
    case setVringEnable = 18
    case setBackendRequestFD = 21
    case resetDevice = 34
    case getMaxMemSlots = 36
    case addMemReg = 37
    case removeMemReg = 38
    case setStatus = 39
    case getStatus = 40
    case setDeviceStateFD = 42
    case checkDeviceState = 43

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
    public let rawValue: UInt32
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
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let multipleQueues = ProtocolFeatures(rawValue: 1 << 0)
    public static let logSharedMemoryFD = ProtocolFeatures(rawValue: 1 << 1)
    public static let replyAck = ProtocolFeatures(rawValue: 1 << 3)
    public static let backendRequests = ProtocolFeatures(rawValue: 1 << 5)
    public static let resetDevice = ProtocolFeatures(rawValue: 1 << 13)
    public static let configureMemorySlots = ProtocolFeatures(rawValue: 1 << 15)
    public static let status = ProtocolFeatures(rawValue: 1 << 16)
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

    public var description: String { self == .save ? "SAVE" : "LOAD" }
}

/// When the transfer happens: only STOPPED (0) exists.
public enum TransferPhase: UInt32, Sendable {
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
    public var flags: MessageFlags
    public var payload: [UInt8]
    /// Attached descriptors, owned by the message: a sender hands them over
    /// with it, a receiver takes out those it keeps; the rest are closed with it.
    public var descriptors: AttachedDescriptors

    /// Bytes in a header.
    public static let headerSize = 12
    /// The largest payload accepted (rust-vmm's limit; QEMU's own is larger).
    public static let maximumPayloadSize = 4096

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
