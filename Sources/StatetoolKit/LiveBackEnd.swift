import StateStream
import VhostUser

/// A live vhost-user back-end as `replay` and `capture` talk to it: its
/// socket, how long any one wait may last, and where the messages are logged.
public struct LiveBackEnd: Sendable {
    /// The back-end's vhost-user socket.
    public let socket: String
    /// How long any one wait for the back-end may last.
    public let timeout: Duration
    /// Where every vhost-user message is logged (`--trace`); nowhere by default.
    public let log: @Sendable (String) -> Void

    /// A back-end listening on `socket`.
    public init(socket: String, timeout: Duration, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.socket = socket
        self.timeout = timeout
        self.log = log
    }

    /// Connects and runs QEMU's initialisation.
    func connect() throws(VhostUserError) -> FrontEnd {
        var frontEnd = try FrontEnd(socketPath: socket, timeout: timeout, log: log)
        try frontEnd.initialize()
        return frontEnd
    }
}

/// `replay`: a state stream sent through a live back-end's load path, as QEMU
/// sends it on the destination, and the back-end's verdict.
public struct StateReplay {
    /// The stream as the user named it (`-` for standard input).
    public let path: String
    /// Whether a broken file's valid prefix is sent instead of refusing it.
    public var force = false

    /// A replay of the stream at `path`.
    public init(_ path: String) {
        self.path = path
    }

    /// What a file holds before anything connects: `nil` for standard input,
    /// which is checked as it is sent.
    public struct Check: Sendable {
        /// The file's framing; with ``sendsValidPrefixOnly`` its problems.
        public let analysis: StreamAnalysis
        /// Whether the file is broken and only its valid prefix will be sent (`force`).
        public let sendsValidPrefixOnly: Bool
    }

    /// What one replay did.
    public struct Outcome: Sendable {
        /// What was sent.
        public let sent: StateTransfer.Sent
        /// CHECK_DEVICE_STATE's answer: 0 accepted.
        public let verdict: UInt64
        /// How long the transfer took.
        public let transferTime: Duration
        /// How long the back-end took to answer CHECK_DEVICE_STATE.
        public let checkTime: Duration

        /// The `replay --json` object.
        public func report(file: String) -> ReplayReport {
            ReplayReport(
                file: file, chunks: sent.chunks, payloadBytes: sent.payloadBytes, transferSeconds: transferTime.seconds,
                checkSeconds: checkTime.seconds, checkDeviceState: verdict)
        }
    }

    /// Why a replay stops; for a broken stream nothing (or, as QEMU does, no
    /// CHECK_DEVICE_STATE) was sent.
    public enum Failure: Error {
        /// The file is broken and `force` is off: nothing was sent.
        case brokenFile(StreamAnalysis)
        /// The stream broke while it was sent: the transfer was aborted as QEMU
        /// aborts it (the pipe closed, no CHECK_DEVICE_STATE sent).
        case abortedTransfer(StreamAnalysis, payloadBytes: UInt64)
        /// The back-end failed to talk, or broke the protocol.
        case backEnd(VhostUserError)
        /// The stream cannot be opened or read.
        case input(InputFailure)
        /// Reading the stream failed while it was sent.
        case reading(InputError)
    }

    /// Checks the file before anything connects.
    ///
    /// - Throws: ``Failure/brokenFile(_:)`` for a broken file without `force`;
    ///   ``Failure/input(_:)`` when it cannot be read.
    public func check() throws(Failure) -> Check? {
        guard path != "-" else { return nil }
        let analysis: StreamAnalysis
        do {
            analysis = try StreamAnalysis.analyze(Input.openStream(path), computeDigest: false)
        } catch let failure as InputFailure {
            throw .input(failure)
        } catch let error as InputError {
            throw .input(.unreadable(path: path, error))
        } catch {
            throw .input(.unreadable(path: path, .readFailed(.ioError)))
        }
        guard analysis.error != nil else { return Check(analysis: analysis, sendsValidPrefixOnly: false) }
        guard force else { throw .brokenFile(analysis) }
        return Check(analysis: analysis, sendsValidPrefixOnly: true)
    }

    /// Connects to `backEnd`, sends the payload through its load path (a
    /// checked raw file is spliced, its bodies never copied through this
    /// process) and asks for its verdict.
    ///
    /// - Parameters:
    ///   - checked: What ``check()`` found.
    ///   - progress: Called with the bytes sent so far.
    public func replay(into backEnd: LiveBackEnd, checked: Check?, progress: (UInt64) -> Void = { _ in }) throws(Failure) -> Outcome {
        let input: StateStreamInput
        do {
            input = try Input.openStream(path)
        } catch {
            throw .input(error)
        }
        do {
            let frontEnd = try backEnd.connect()
            let pipe = try frontEnd.startTransfer(.load)
            let started = ContinuousClock.now
            let sent: StateTransfer.Sent
            if let checked, input.compression == .none, let file = input.regularFile {
                let moved = try StateTransfer.splicePayload(
                    ofValidatedFile: file, chunkCount: checked.analysis.chunkCount, into: pipe, timeout: frontEnd.timeout, progress: progress)
                sent = StateTransfer.Sent(analysis: checked.analysis, payloadBytes: moved, chunks: checked.analysis.chunkCount)
            } else {
                sent = try StateTransfer.sendPayload(of: input, into: pipe, timeout: frontEnd.timeout, progress: progress)
            }
            if sent.analysis.error != nil && !(checked?.sendsValidPrefixOnly ?? false) {
                throw Failure.abortedTransfer(sent.analysis, payloadBytes: sent.payloadBytes)
            }
            let transferTime = ContinuousClock.now - started
            let verdict = try frontEnd.checkDeviceState()
            return Outcome(sent: sent, verdict: verdict, transferTime: transferTime, checkTime: ContinuousClock.now - started - transferTime)
        } catch let failure as Failure {
            throw failure
        } catch let error as VhostUserError {
            throw .backEnd(error)
        } catch let error as InputError {
            throw .reading(error)
        } catch {
            throw .reading(.readFailed(.ioError))
        }
    }
}

/// `capture`: a live back-end's state taken through its save path, as QEMU
/// takes it on the source, framed as QEMU frames it.
public enum StateCapture {
    /// What a capture took and the back-end's verdict on its save.
    public struct Outcome: Sendable {
        /// What was received and written.
        public let received: StateTransfer.Received
        /// CHECK_DEVICE_STATE's answer: 0 the save succeeded.
        public let verdict: UInt64
    }

    /// Why a capture fails; nothing is put in place.
    public enum Failure: Error {
        /// The back-end failed to talk, or broke the protocol.
        case backEnd(VhostUserError)
        /// The output cannot be written.
        case output(OutputError)
    }

    /// Connects to `backEnd`, receives its state in chunks of `chunkSize`
    /// payload bytes into `output` (compressed as `compression` says), and asks
    /// for its verdict; `output` is committed only when the save succeeded.
    ///
    /// - Parameter progress: Called with the payload bytes received so far.
    public static func capture(
        from backEnd: LiveBackEnd, chunkSize: Int, into output: OutputFile, compression: OutputCompression = .none,
        progress: (UInt64) -> Void = { _ in }
    ) throws(Failure) -> Outcome {
        do {
            let sink = try compression.sink(into: output)
            let frontEnd = try backEnd.connect()
            let pipe = try frontEnd.startTransfer(.save)
            let received = try StateTransfer.receiveState(from: pipe, chunkSize: chunkSize, into: sink, timeout: frontEnd.timeout, progress: progress)
            let verdict = try frontEnd.checkDeviceState()
            if verdict == 0 { try output.commit() }
            return Outcome(received: received, verdict: verdict)
        } catch let error as VhostUserError {
            throw .backEnd(error)
        } catch let error as OutputError {
            throw .output(error)
        } catch {
            throw .output(.writeFailed(.ioError))
        }
    }
}
