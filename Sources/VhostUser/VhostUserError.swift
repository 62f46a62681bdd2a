import SystemCalls
import SystemPackage

/// Everything that can go wrong talking to a vhost-user peer, each case saying
/// what was expected and what came.
public enum VhostUserError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No socket at the path, not a socket, permission denied, connection refused...
    case cannotConnect(path: String, Errno)
    /// The socket could not be created, bound or listened on.
    case cannotListen(path: String, Errno)
    /// The peer said nothing (or took nothing) for the whole timeout.
    case timedOut(waitingFor: String, seconds: Int64)
    /// The peer closed the connection.
    case peerHungUp(waitingFor: String)
    /// A system call failed.
    case systemCall(SystemCallError)
    /// The peer broke the protocol: what was expected, what came.
    case protocolViolation(String)
    /// The back-end does not offer VHOST_USER_F_PROTOCOL_FEATURES (virtio bit 30).
    case noProtocolFeatures(offered: UInt64)
    /// The back-end does not offer VHOST_USER_PROTOCOL_F_DEVICE_STATE (protocol bit 19).
    case noDeviceState(offered: UInt64)
    /// SET_DEVICE_STATE_FD was answered with an error code.
    case transferRejected(reply: UInt64)
    /// The back-end closed its end of the transfer pipe early.
    case transferCutShort(bytesMoved: UInt64)
    /// The input file no longer holds what was validated before the transfer.
    case inputChanged(offset: UInt64)

    /// What went wrong, in one line, with what was expected and what came.
    public var description: String {
        switch self {
        case .cannotConnect(let path, let errno):
            switch errno {
            case .noSuchFileOrDirectory: return "no socket at \(path)"
            case .connectionRefused: return "connection refused at \(path): nothing is listening there"
            case .permissionDenied: return "permission denied connecting to \(path)"
            case .notSocket: return "\(path) is not a socket"
            default: return "cannot connect to \(path): \(errno)"
            }
        case .cannotListen(let path, let errno): return "cannot listen on \(path): \(errno)"
        case .timedOut(let what, let seconds): return "timed out after \(seconds) s waiting for \(what)"
        case .peerHungUp(let what): return "the peer hung up while waiting for \(what)"
        case .systemCall(let error): return error.description
        case .protocolViolation(let text): return "protocol error: \(text)"
        case .noProtocolFeatures(let offered):
            return "the back-end does not offer VHOST_USER_F_PROTOCOL_FEATURES (virtio features 0x\(String(offered, radix: 16)))"
        case .noDeviceState(let offered):
            return "the back-end does not support migration state transfer: no VHOST_USER_PROTOCOL_F_DEVICE_STATE (protocol features 0x\(String(offered, radix: 16)))"
        case .transferRejected(let reply):
            return "the back-end did not accept migration state transfer: SET_DEVICE_STATE_FD answered 0x\(String(reply, radix: 16)) (error code \(DeviceStateFDReply.errorCode(reply)))"
        case .transferCutShort(let bytes): return "the back-end closed the transfer pipe after \(bytes) bytes"
        case .inputChanged(let offset): return "the input file changed during the transfer (at offset \(offset))"
        }
    }
}

extension VhostUserError {
    /// Runs system calls, a failure becoming ``systemCall(_:)``.
    static func calling<Value: ~Copyable>(_ body: () throws(SystemCallError) -> Value) throws(VhostUserError) -> Value {
        do {
            return try body()
        } catch {
            throw .systemCall(error)
        }
    }
}
