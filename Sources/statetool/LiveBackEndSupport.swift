import ArgumentParser
import StateStream
import VhostUser

/// Options of the commands that talk to a live back-end.
struct SocketOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The back-end's vhost-user socket.", valueName: "path"))
    var socket: String

    @Option(help: ArgumentHelp("Seconds any one wait for the back-end may last.", valueName: "seconds"))
    var timeout = 30

    @Flag(name: .shortAndLong, help: "Log every vhost-user message on standard error.")
    var verbose = false

    func validate() throws {
        guard timeout > 0 else { throw ValidationError("--timeout must be at least 1 second.") }
    }

    /// Connects and runs QEMU's initialisation.
    func connect() throws(VhostUserError) -> FrontEnd {
        let log: (String) -> Void = verbose ? { StandardError.write($0) } : { _ in }
        var frontEnd = try FrontEnd(socketPath: socket, timeout: .seconds(timeout), log: log)
        try frontEnd.initialize()
        return frontEnd
    }
}

/// The exit statuses of `replay` and `capture`, one per kind of failure.
enum LiveExitStatus {
    static let stateRejected = ExitCode(3)
    static let cannotConnect = ExitCode(4)
    static let noDeviceState = ExitCode(5)
    static let transferRejected = ExitCode(6)
    static let hungUp = ExitCode(7)
    static let timedOut = ExitCode(8)
    static let protocolError = ExitCode(9)

    /// The documentation shared by `replay` and `capture`.
    static let summary = """
        0 the back-end accepted the state (CHECK_DEVICE_STATE 0), 1 the stream is broken, 2 an input \
        could not be read or an output written, 3 the back-end rejected the state (CHECK_DEVICE_STATE \
        non-zero), 4 cannot connect (no socket, not a socket, permission denied, connection refused), \
        5 the back-end lacks VHOST_USER_F_PROTOCOL_FEATURES or DEVICE_STATE, 6 SET_DEVICE_STATE_FD \
        rejected, 7 the back-end hung up, 8 timed out, 9 protocol error, 64 usage error.
        """

    /// Prints `error` and returns its exit status.
    static func fail(_ error: VhostUserError) -> ExitCode {
        StandardError.write("error: \(error)")
        switch error {
        case .cannotConnect: return cannotConnect
        case .noProtocolFeatures, .noDeviceState: return noDeviceState
        case .transferRejected: return transferRejected
        case .peerHungUp, .transferCutShort: return hungUp
        case .timedOut: return timedOut
        case .protocolViolation: return protocolError
        case .cannotListen, .systemCall, .inputChanged: return ExitStatus.unreadable
        }
    }
}
