import ArgumentParser
import VhostUser

/// The exit statuses statetool documents, in one place.
enum ExitStatus: Int32, Sendable, Comparable {
    /// The input is valid; the back-end accepted the state.
    case success = 0
    /// The input is invalid: an error, or with `--strict` a warning; a
    /// difference (`diff`), a failing inode (`preflight`), a refusal.
    case invalid = 1
    /// An input could not be opened or read, or an output written.
    case unreadable = 2
    /// The back-end rejected the state (CHECK_DEVICE_STATE non-zero).
    case stateRejected = 3
    /// No socket, not a socket, permission denied, connection refused.
    case cannotConnect = 4
    /// The back-end lacks VHOST_USER_F_PROTOCOL_FEATURES or DEVICE_STATE.
    case noDeviceState = 5
    /// SET_DEVICE_STATE_FD was refused.
    case transferRejected = 6
    /// The back-end hung up.
    case hungUp = 7
    /// The back-end said nothing for the whole timeout.
    case timedOut = 8
    /// The back-end broke the protocol.
    case protocolError = 9
    /// The command line asks for something that cannot be done
    /// (swift-argument-parser's `validationFailure`).
    case usage = 64
    /// The reader of standard output went away (`| head`): the command ends
    /// quietly, as a program killed by SIGPIPE would show in a shell (128 + 13).
    case readerGone = 141

    static func < (a: ExitStatus, b: ExitStatus) -> Bool { a.rawValue < b.rawValue }

    /// The documentation shared by `replay` and `capture`.
    static let liveSummary = """
        0 the back-end accepted the state (CHECK_DEVICE_STATE 0), 1 the stream is broken, 2 an input \
        could not be read or an output written, 3 the back-end rejected the state (CHECK_DEVICE_STATE \
        non-zero), 4 cannot connect (no socket, not a socket, permission denied, connection refused), \
        5 the back-end lacks VHOST_USER_F_PROTOCOL_FEATURES or DEVICE_STATE, 6 SET_DEVICE_STATE_FD \
        rejected, 7 the back-end hung up, 8 timed out, 9 protocol error, 64 usage error.
        """
}

/// How a command fails: the lines it has left to say on standard error and
/// the status it exits with. Commands throw it; ``Statetool/main()`` prints
/// and exits. What was printed already (a stream's problems, a back-end's
/// log) is not in ``messages``.
struct CommandFailure: Error, Sendable {
    var status: ExitStatus
    var messages: [String]

    init(_ status: ExitStatus, messages: [String] = []) {
        self.status = status
        self.messages = messages
    }

    init(_ status: ExitStatus, _ message: String) {
        self.init(status, messages: [message])
    }

    /// A failure talking to a live back-end, with the status for its kind.
    init(_ error: VhostUserError) {
        let status: ExitStatus
        switch error {
        case .cannotConnect: status = .cannotConnect
        case .noProtocolFeatures, .noDeviceState: status = .noDeviceState
        case .transferRejected: status = .transferRejected
        case .peerHungUp, .transferCutShort: status = .hungUp
        case .timedOut: status = .timedOut
        case .protocolViolation: status = .protocolError
        case .cannotListen, .systemCall, .inputChanged: status = .unreadable
        }
        self.init(status, "error: \(error)")
    }

    /// Prints the messages on standard error.
    func printMessages() {
        messages.forEach(StandardError.write)
    }
}
