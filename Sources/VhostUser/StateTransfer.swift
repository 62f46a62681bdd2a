import CStateToolShims
import Glibc
import StateStream
import SystemPackage

/// Moving a state through the transfer pipe, in both directions, as QEMU's
/// `vhost_load_backend_state` and `vhost_save_backend_state` do.
public enum StateTransfer {
    /// What a LOAD transfer sent.
    public struct Sent: Sendable {
        /// The stream as read, problems included.
        public var analysis: StreamAnalysis
        /// Payload bytes written into the pipe.
        public var payloadBytes: UInt64
        /// Chunks whose payload was written.
        public var chunks: Int

        public init(analysis: StreamAnalysis, payloadBytes: UInt64, chunks: Int) {
            self.analysis = analysis
            self.payloadBytes = payloadBytes
            self.chunks = chunks
        }
    }

    /// Writes the payload of `input` into `pipe` and closes it.
    ///
    /// Only complete chunks are written (every chunk up to 1 MiB comes whole
    /// from the reader). A broken stream stops the transfer at its first error,
    /// as QEMU's loader stops: the caller must then not send CHECK_DEVICE_STATE.
    ///
    /// - Throws: ``VhostUserError/transferCutShort(bytesMoved:)`` when the
    ///   back-end closes its end, ``VhostUserError/timedOut(waitingFor:seconds:)``
    ///   when it stops reading for `timeout`, or the input's error.
    public static func sendPayload(
        of input: StateStreamInput,
        into pipe: FileDescriptor,
        timeout: Duration,
        progress: (UInt64) -> Void = { _ in }
    ) throws -> Sent {
        defer { try? pipe.close() }
        var sent: UInt64 = 0
        var chunks = 0
        let analysis = try StreamAnalysis.analyze(input, computeDigest: false) { reader, event in
            switch event {
            case .payload(let bytes):
                let alreadySent = sent
                try bytes.withUnsafeBytes { buffer in
                    Result { () throws(VhostUserError) in try writeAll(buffer, to: pipe, timeout: timeout, alreadySent: alreadySent) }
                }.get()
                sent += UInt64(bytes.count)
                progress(input.bytesConsumed(by: reader))
            case .chunkEnd:
                chunks += 1
            default:
                break
            }
        }
        return Sent(analysis: analysis, payloadBytes: sent, chunks: chunks)
    }

    /// Moves the payload of the first `chunkCount` chunks of a raw stream file
    /// into `pipe` with `splice`, without copying it through this process, and
    /// closes the pipe. The file must have been validated: its length fields
    /// are read again one by one, and any change is an error.
    ///
    /// - Returns: The payload bytes moved.
    public static func splicePayload(
        ofValidatedFile file: FileDescriptor,
        chunkCount: Int,
        into pipe: FileDescriptor,
        timeout: Duration,
        progress: (UInt64) -> Void = { _ in }
    ) throws(VhostUserError) -> UInt64 {
        defer { try? pipe.close() }
        var offset: Int64 = 0
        var moved: UInt64 = 0
        for _ in 0..<chunkCount {
            var field = [UInt8](repeating: 0, count: StateStreamFormat.lengthFieldSize)
            let read = field.withUnsafeMutableBytes { pread(file.rawValue, $0.baseAddress!, $0.count, off_t(offset)) }
            guard read == field.count else { throw .inputChanged(offset: UInt64(offset)) }
            var remaining = Int(field.readInteger(as: UInt32.self) ?? 0)
            guard remaining > 0 else { throw .inputChanged(offset: UInt64(offset)) }
            offset += Int64(StateStreamFormat.lengthFieldSize)
            while remaining > 0 {
                try Connection.poll(pipe.rawValue, events: Int16(POLLOUT), timeout: timeout, what: "the back-end to read the state")
                var position = Int64(offset)
                let count = statetool_splice_file_to_pipe(file.rawValue, &position, pipe.rawValue, remaining)
                if count < 0 {
                    if errno == EINTR || errno == EAGAIN { continue }
                    if errno == EPIPE { throw .transferCutShort(bytesMoved: moved) }
                    throw .systemCall("splice", .current)
                }
                guard count > 0 else { throw .inputChanged(offset: UInt64(offset)) }
                offset = position
                remaining -= count
                moved += UInt64(count)
            }
            progress(UInt64(offset))
        }
        return moved
    }

    /// Writes all of `bytes` to a pipe, waiting at most `timeout` for room each time.
    static func writeAll(_ bytes: UnsafeRawBufferPointer, to pipe: FileDescriptor, timeout: Duration, alreadySent: UInt64) throws(VhostUserError) {
        var written = 0
        while written < bytes.count {
            try Connection.poll(pipe.rawValue, events: Int16(POLLOUT), timeout: timeout, what: "the back-end to read the state")
            let count = Glibc.write(pipe.rawValue, bytes.baseAddress! + written, bytes.count - written)
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                if errno == EPIPE { throw .transferCutShort(bytesMoved: alreadySent + UInt64(written)) }
                throw .systemCall("write to the transfer pipe", .current)
            }
            written += count
        }
    }

    /// What a SAVE transfer received.
    public struct Received: Sendable, Equatable {
        public var chunks: Int
        public var payloadBytes: UInt64
    }

    /// Reads `pipe` to its end, framing each read as one chunk of at most
    /// `chunkSize` bytes (QEMU reads at most 1 MiB at a time), then writes the
    /// terminator and finishes `sink`.
    public static func receiveState(
        from pipe: FileDescriptor,
        chunkSize: Int = Int(StateStreamFormat.qemuMaximumChunkLength),
        into sink: any ByteSink,
        timeout: Duration,
        progress: (UInt64) -> Void = { _ in }
    ) throws -> Received {
        defer { try? pipe.close() }
        var writer = StateStreamWriter(sink: sink)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            try Connection.poll(pipe.rawValue, events: Int16(POLLIN), timeout: timeout, what: "the back-end to write its state")
            let count = Glibc.read(pipe.rawValue, buffer.baseAddress!, buffer.count)
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw VhostUserError.systemCall("read from the transfer pipe", .current)
            }
            if count == 0 { break }
            try writer.writeChunk(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            progress(writer.payloadBytes)
        }
        try writer.finish()
        return Received(chunks: writer.chunkCount, payloadBytes: writer.payloadBytes)
    }
}
