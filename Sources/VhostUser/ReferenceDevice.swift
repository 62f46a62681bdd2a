import Crypto
import StateStream
import SystemCalls
import SystemPackage

/// The state `statetool serve` keeps: what a LOAD brings is checked and
/// recorded, what a SAVE sends comes from a file. Faults can be switched on to
/// test front-ends.
public struct ReferenceDevice: DeviceState {
    /// How `record` is written.
    public enum RecordFormat: String, Sendable, CaseIterable {
        /// The raw payload, as the back-end received it.
        case payload
        /// Framed as QEMU frames a saved state (1 MiB chunks at most).
        case stream
    }

    /// Where each loaded state is written (replaced on every LOAD).
    public var record: (path: String, format: RecordFormat)?
    /// Reject a loaded state whose payload has another SHA-256 (lowercase hex).
    public var expectedSHA256: String?
    /// Answer CHECK_DEVICE_STATE with 1 whatever happened.
    public var failsCheck = false
    /// Close the transfer pipe after this many payload bytes.
    public var hangUpAfter: UInt64?
    /// The state a SAVE sends: a stream (its payload is sent) or a raw payload.
    public var statePath: String?
    /// Called with a line about each transfer.
    public var log: @Sendable (String) -> Void = { _ in }

    /// An honest device: nothing recorded or checked, no state to save, no
    /// faults.
    public init() {}

    /// Reads the state from `pipe` to its end (or to ``hangUpAfter``), writes
    /// it to ``record`` and checks it against ``expectedSHA256``, as set.
    /// Returns 0 for success; 1 when reading, recording or the check failed, or
    /// when ``failsCheck`` is set.
    public func load(from pipe: FileDescriptor) -> UInt64 {
        let loaded: (bytes: UInt64, sha256: String?)
        do {
            loaded = try receive(from: pipe)
        } catch {
            log(error.message)
            return 1
        }
        log("loaded \(loaded.bytes) payload bytes" + (loaded.sha256.map { ", sha256 \($0)" } ?? ""))
        if let expectedSHA256, expectedSHA256.lowercased() != loaded.sha256 {
            log("rejecting the state: expected sha256 \(expectedSHA256)")
            return 1
        }
        return failsCheck ? 1 : 0
    }

    /// Why a transfer failed, as the log says it.
    private struct Failure: Error {
        var message: String
    }

    /// Reads the pipe to its end (or to ``hangUpAfter``), hashing and recording
    /// what comes as asked.
    private func receive(from pipe: FileDescriptor) throws(Failure) -> (bytes: UInt64, sha256: String?) {
        // Hashing costs more than moving the bytes: only when there is something to compare.
        var digest = expectedSHA256 == nil ? nil : SHA256()
        let recording = try openRecord()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        var received: UInt64 = 0
        while true {
            var limit = buffer.count
            if let hangUpAfter {
                guard received < hangUpAfter else { throw Failure(message: "hanging up after \(received) bytes, as asked") }
                limit = Int(min(UInt64(limit), hangUpAfter - received))
            }
            let count: Int
            do {
                count = try pipe.readSome(into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<limit]))
            } catch {
                throw Failure(message: "reading the state failed: \(error.errno)")
            }
            if count == 0 { break }
            let bytes = UnsafeRawBufferPointer(rebasing: buffer[..<count])
            digest?.update(bufferPointer: bytes)
            do {
                try recording?.sink.write(bytes)
            } catch {
                throw Failure(message: "recording the state failed: \(error)")
            }
            received += UInt64(count)
        }
        do {
            try recording?.sink.finish()
            try recording?.file.commit()
        } catch {
            throw Failure(message: "recording the state failed: \(error)")
        }
        return (received, digest.map { $0.finalize().hexString })
    }

    /// The output ``record`` names, and the sink that writes it in its format.
    private func openRecord() throws(Failure) -> (file: OutputFile, sink: any ByteSink)? {
        guard let record else { return nil }
        do {
            let file = try OutputFile(path: record.path, protecting: [])
            return (file, record.format == .stream ? PayloadFramingSink(file) : file)
        } catch {
            throw Failure(message: "cannot record the state: \(error)")
        }
    }

    /// Sends ``statePath`` into `pipe`: the payload of a valid stream, else the
    /// file as it is; nothing without a ``statePath``. Stops after
    /// ``hangUpAfter`` bytes if set. Returns 0 for success; 1 when sending
    /// failed or was cut short, or when ``failsCheck`` is set.
    public func save(into pipe: FileDescriptor) -> UInt64 {
        guard let statePath else {
            log("no --state to save: sending an empty state")
            return failsCheck ? 1 : 0
        }
        let sink = PipeSink(pipe: pipe, limit: hangUpAfter)
        do {
            let isStream = try StreamAnalysis.analyze(StateStreamInput(path: statePath), computeDigest: false).isValid()
            if isStream {
                _ = try StreamTransforms.extractPayload(of: StateStreamInput(path: statePath), to: sink)
            } else {
                let source = try FileDescriptorSource(path: statePath)
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
                defer { buffer.deallocate() }
                while case let count = try source.read(into: buffer), count > 0 {
                    try sink.write(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
                }
            }
            log("saved \(sink.written) payload bytes from \(statePath)")
        } catch where sink.reachedLimit {
            log("hanging up after \(sink.written) bytes, as asked")
            return 1
        } catch {
            log("saving the state failed: \(error)")
            return 1
        }
        return failsCheck ? 1 : 0
    }
}

/// Writes into a transfer pipe, stopping after `limit` bytes if given.
private final class PipeSink: ByteSink {
    let pipe: FileDescriptor
    let limit: UInt64?
    private(set) var written: UInt64 = 0
    /// Whether a write stopped at `limit` (and threw).
    private(set) var reachedLimit = false

    init(pipe: FileDescriptor, limit: UInt64?) {
        self.pipe = pipe
        self.limit = limit
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(OutputError) {
        var bytes = bytes
        if let limit, written + UInt64(bytes.count) > limit {
            bytes = UnsafeRawBufferPointer(rebasing: bytes[..<Int(limit - written)])
            reachedLimit = true
        }
        do {
            _ = try pipe.writeAll(bytes)
        } catch {
            throw .writeFailed((error as? Errno) ?? .ioError)
        }
        written += UInt64(bytes.count)
        if reachedLimit { throw .writeFailed(.brokenPipe) }
    }

    func finish() throws(OutputError) {}
}

/// Frames what is written to it in chunks of QEMU's largest read (1 MiB).
private final class PayloadFramingSink: ByteSink {
    private var framer: PayloadFramer

    init(_ destination: any ByteSink) {
        framer = PayloadFramer(chunkSize: Int(StateStreamFormat.qemuMaximumChunkLength), sink: BufferedSink(destination))
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(OutputError) {
        try framer.append(bytes)
    }

    func finish() throws(OutputError) {
        try framer.finish()
    }
}
