import ArgumentParser
import StateStream
import StatetoolKit
import VhostUser

/// Options of the commands that talk to a live back-end.
struct SocketOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The back-end's vhost-user socket.", valueName: "path"))
    var socket: String

    @Option(help: ArgumentHelp("Seconds any one wait for the back-end may last.", valueName: "seconds"))
    var timeout = 30

    @Flag(help: "Log every vhost-user message on standard error.")
    var trace = false

    func validate() throws {
        guard timeout > 0 else { throw ValidationError("--timeout must be at least 1 second.") }
    }

    /// The back-end the options name.
    var backEnd: LiveBackEnd {
        let log: @Sendable (String) -> Void
        if trace {
            log = { StandardError.write($0) }
        } else {
            log = { _ in }
        }
        return LiveBackEnd(socket: socket, timeout: .seconds(timeout), log: log)
    }
}
