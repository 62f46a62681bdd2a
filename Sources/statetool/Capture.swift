import ArgumentParser
import StateStream
import StatetoolKit
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
        let outcome: StateCapture.Outcome
        do {
            let file = try output.open(protecting: [])
            var progress = ProgressLine(enabled: !output.quiet, total: nil)
            defer { progress.clear() }
            outcome = try StateCapture.capture(
                from: connection.backEnd, chunkSize: chunkSize.bytes, into: file, compression: compression.compression
            ) { progress.update(bytes: $0) }
        } catch let error as StateCapture.Failure {
            switch error {
            case .backEnd(let error): throw CommandFailure(error)
            case .output(let error): throw CommandSupport.fail(error, file: connection.socket)
            }
        } catch {
            throw CommandSupport.fail(error, file: connection.socket)
        }
        let elapsed = ContinuousClock.now - started
        let received = outcome.received
        StandardError.write("captured \(received.payloadBytes) payload bytes in \(received.chunks) chunks in \(TextFormat.seconds(elapsed)) (\(TextFormat.rate(received.payloadBytes, elapsed)))")
        guard outcome.verdict == 0 else {
            StandardError.write("the back-end reported a failed save (CHECK_DEVICE_STATE \(outcome.verdict)): no output written")
            throw CommandFailure(.stateRejected)
        }
    }
}
