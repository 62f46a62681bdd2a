import ArgumentParser
import Dispatch
import SystemCalls
import StateStream
import VhostUser

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a reference vhost-user back-end that takes and gives device state.",
        discussion: """
            Listens on --socket and answers what QEMU sends to initialise a vhost-user-fs device and \
            migrate it. On LOAD it reads the state to its end and records it (--record), answering \
            CHECK_DEVICE_STATE with 0, or 1 on an --expect-sha256 mismatch or with --fail-check. On \
            SAVE it sends the state from --state (a stream, whose payload is sent, or a raw payload). \
            Fault options reproduce real back-end behaviour for testing front-ends. Serves \
            connections one after another until SIGINT or SIGTERM (or after one with --once), then \
            removes its socket.
            """
    )

    @Option(help: ArgumentHelp("The socket to listen on.", valueName: "path"))
    var socket: String

    @Option(help: ArgumentHelp("The state SAVE sends: a stream or a raw payload.", valueName: "file"))
    var state: String?

    @Option(help: ArgumentHelp("Where each loaded state is written.", valueName: "file"))
    var record: String?

    @Option(help: ArgumentHelp("How --record is written: payload or stream.", valueName: "format"))
    var recordFormat = ReferenceDevice.RecordFormat.payload

    @Option(name: .customLong("expect-sha256"), help: ArgumentHelp("Reject a loaded state whose payload has another SHA-256.", valueName: "hex"))
    var expectedSHA256: String?

    @Flag(help: "Answer CHECK_DEVICE_STATE with 1.")
    var failCheck = false

    @Flag(help: "Answer SET_DEVICE_STATE_FD with a pipe of its own.")
    var ownFd = false

    @Flag(help: "Refuse SET_DEVICE_STATE_FD (reply 0x101).")
    var reject = false

    @Option(help: ArgumentHelp("Close the transfer pipe after this many payload bytes.", valueName: "bytes"))
    var hangUpAfter: ByteCount?

    @Flag(help: "Do not offer VHOST_USER_PROTOCOL_F_DEVICE_STATE.")
    var noDeviceState = false

    @Flag(help: "Serve one connection, then exit.")
    var once = false

    @Flag(help: "Log every vhost-user message on standard error.")
    var trace = false

    func run() throws {
        var device = ReferenceDevice()
        device.record = record.map { ($0, recordFormat) }
        device.expectedSHA256 = expectedSHA256
        device.failsCheck = failCheck
        device.hangUpAfter = hangUpAfter?.bytes
        device.statePath = state
        device.log = { StandardError.write("serve: \($0)") }
        var behaviour = BackEndBehaviour()
        behaviour.offersDeviceState = !noDeviceState
        behaviour.returnsOwnDescriptor = ownFd
        behaviour.rejectsTransfer = reject

        // Signals are handled before the socket exists: whoever sees the socket can stop serve.
        let path = socket
        let stopSignals = Signals.handle([.interrupt, .terminate]) {
            try? Files.unlink(path)
            Signals.exit(0)
        }
        defer { stopSignals.forEach { $0.cancel() } }
        let listener: Listener
        do {
            listener = try Listener(path: socket)
        } catch {
            throw CommandFailure(.unreadable, "error: \(error)")
        }
        StandardError.write("serve: listening on \(socket)")
        repeat {
            do {
                let connection = try listener.accept(timeout: .seconds(30))
                StandardError.write("serve: front-end connected")
                try BackEnd(connection: connection, device: device, behaviour: behaviour, log: trace ? { StandardError.write("serve: \($0)") } : { _ in }).run()
                StandardError.write("serve: front-end disconnected")
            } catch {
                StandardError.write("serve: \(error)")
            }
        } while !once
    }
}

extension ReferenceDevice.RecordFormat: ExpressibleByArgument {}
