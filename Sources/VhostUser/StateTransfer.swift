import StateStream
import SystemCalls
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

        /// A record of a LOAD transfer.
        public init(analysis: StreamAnalysis, payloadBytes: UInt64, chunks: Int) {
            self.analysis = analysis
            self.payloadBytes = payloadBytes
            self.chunks = chunks
        }
    }

    /// Writes the payload of `input` into `pipe`, which it closes.
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
        into pipe: consuming OwnedDescriptor,
        timeout: Duration,
        progress: (UInt64) -> Void = { _ in }
    ) throws -> Sent {
        let transferPipe = pipe.descriptor
        var sent: UInt64 = 0
        var chunks = 0
        let analysis = try StreamAnalysis.analyze(input, computeDigest: false) { reader, event in
            switch event {
            case .payload(let bytes):
                let alreadySent = sent
                try bytes.withUnsafeBytes { buffer in
                    Result { () throws(VhostUserError) in try writeAll(buffer, to: transferPipe, timeout: timeout, alreadySent: alreadySent) }
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
    /// closes the pipe. The state-stream reader places the chunks, reading only
    /// their length fields; the file must have been validated before, and any
    /// change since (a problem, fewer chunks) is an error.
    ///
    /// - Returns: The payload bytes moved.
    public static func splicePayload(
        ofValidatedFile file: FileDescriptor,
        chunkCount: Int,
        into pipe: consuming OwnedDescriptor,
        timeout: Duration,
        progress: (UInt64) -> Void = { _ in }
    ) throws(VhostUserError) -> UInt64 {
        let transferPipe = pipe.descriptor
        var reader: StateStreamReader
        do {
            reader = StateStreamReader(source: try PositionalFileSource(file), bufferSize: 4096)
        } catch {
            throw .inputChanged(offset: 0)
        }
        var moved: UInt64 = 0
        var chunks = 0
        while chunks < chunkCount {
            let event: StreamEvent?
            do {
                event = try reader.next()
            } catch {
                throw .inputChanged(offset: reader.framedBytesRead)
            }
            switch event {
            case .chunkStart(let chunk):
                try splice(chunk, of: file, into: transferPipe, timeout: timeout, movedBefore: moved)
                moved += UInt64(chunk.length)
                do { try reader.skipPayload() } catch { throw .inputChanged(offset: chunk.payloadOffset) }
                progress(chunk.endOffset)
            case .chunkEnd:
                chunks += 1
            case .problem(let problem) where problem.severity == .error:
                throw .inputChanged(offset: problem.offset)
            case .payload, .problem:
                continue
            case .terminator(let offset):
                throw .inputChanged(offset: offset)
            case nil:
                throw .inputChanged(offset: reader.framedBytesRead)
            }
        }
        return moved
    }

    /// Splices one chunk's body from `file` into `pipe`.
    private static func splice(
        _ chunk: Chunk, of file: FileDescriptor, into pipe: FileDescriptor, timeout: Duration, movedBefore: UInt64
    ) throws(VhostUserError) {
        var offset = Int64(chunk.payloadOffset)
        var remaining = Int(chunk.length)
        while remaining > 0 {
            try Connection.wait(for: .writable, on: pipe, timeout: timeout, what: "the back-end to read the state")
            let count: Int
            do {
                count = try Pipes.splice(from: file, offset: &offset, into: pipe, count: remaining)
            } catch {
                switch error.errno {
                case .resourceTemporarilyUnavailable: continue
                case .brokenPipe: throw .transferCutShort(bytesMoved: movedBefore + UInt64(Int(chunk.length) - remaining))
                default: throw .systemCall(error)
                }
            }
            guard count > 0 else { throw .inputChanged(offset: UInt64(offset)) }
            remaining -= count
        }
    }

    /// Writes all of `bytes` to a pipe, waiting at most `timeout` for room each time.
    static func writeAll(_ bytes: UnsafeRawBufferPointer, to pipe: FileDescriptor, timeout: Duration, alreadySent: UInt64) throws(VhostUserError) {
        var written = 0
        while written < bytes.count {
            try Connection.wait(for: .writable, on: pipe, timeout: timeout, what: "the back-end to read the state")
            do {
                written += try pipe.writeSome(UnsafeRawBufferPointer(rebasing: bytes[written...]))
            } catch {
                switch error.errno {
                case .resourceTemporarilyUnavailable: continue
                case .brokenPipe: throw .transferCutShort(bytesMoved: alreadySent + UInt64(written))
                default: throw .systemCall(error)
                }
            }
        }
    }

    /// What a SAVE transfer received.
    public struct Received: Sendable, Equatable {
        /// Chunks written: one per read of the pipe.
        public var chunks: Int
        /// Payload bytes read from the pipe.
        public var payloadBytes: UInt64
    }

    /// Reads `pipe` to its end, framing each read as one chunk of at most
    /// `chunkSize` bytes (QEMU reads at most 1 MiB at a time), then writes the
    /// terminator and finishes `sink`.
    public static func receiveState(
        from pipe: consuming OwnedDescriptor,
        chunkSize: Int = Int(StateStreamFormat.qemuMaximumChunkLength),
        into sink: any ByteSink,
        timeout: Duration,
        progress: (UInt64) -> Void = { _ in }
    ) throws -> Received {
        let transferPipe = pipe.descriptor
        var writer = StateStreamWriter(sink: sink)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            try Connection.wait(for: .readable, on: transferPipe, timeout: timeout, what: "the back-end to write its state")
            let count: Int
            do {
                count = try transferPipe.readSome(into: buffer)
            } catch {
                if error.errno == .resourceTemporarilyUnavailable { continue }
                throw VhostUserError.systemCall(error)
            }
            if count == 0 { break }
            try writer.writeChunk(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            progress(writer.payloadBytes)
        }
        try writer.finish()
        return Received(chunks: writer.chunkCount, payloadBytes: writer.payloadBytes)
    }
}
