import ArgumentParser
import StateStream
import VhostUser

struct Capture: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Capture a live vhost-user back-end's state through its save path.",
        discussion: """
            Connects as the front-end, runs QEMU's initialisation, sends SET_DEVICE_STATE_FD (SAVE, \
            STOPPED) with a pipe, reads it to its end framing each read as one chunk as QEMU does \
            (at most 1 MiB; --chunk-size to change), writes the terminator, then asks \
            CHECK_DEVICE_STATE. The output is kept only if the back-end confirms.

            Exit status: \(ExitStatus.liveSummary)
            """
    )

    @OptionGroup var connection: SocketOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var chunkSize: ChunkSizeOption

    @OptionGroup var compression: StreamCompressionOptions

    func run() throws {
        let started = ContinuousClock.now
        let received: StateTransfer.Received
        let verdict: UInt64
        do {
            let file = try output.open(protecting: [])
            let sink = try compression.sink(into: file)
            let frontEnd = try connection.connect()
            let pipe = try frontEnd.startTransfer(.save)
            var progress = ProgressLine(enabled: !output.quiet, total: nil)
            defer { progress.clear() }
            received = try StateTransfer.receiveState(from: pipe, chunkSize: chunkSize.bytes, into: sink, timeout: frontEnd.timeout) {
                progress.update(bytes: $0)
            }
            progress.clear()
            verdict = try frontEnd.checkDeviceState()
            if verdict == 0 { try file.commit() }
        } catch let error as VhostUserError {
            throw CommandFailure(error)
        } catch {
            throw CommandSupport.fail(error, file: connection.socket)
        }
        let elapsed = ContinuousClock.now - started
        StandardError.write("captured \(received.payloadBytes) payload bytes in \(received.chunks) chunks in \(TextFormat.seconds(elapsed)) (\(TextFormat.rate(received.payloadBytes, elapsed)))")
        guard verdict == 0 else {
            StandardError.write("the back-end reported a failed save (CHECK_DEVICE_STATE \(verdict)): no output written")
            throw CommandFailure(.stateRejected)
        }
    }
}
