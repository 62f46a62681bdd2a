/// One-pass conversions between streams and payloads. Each reads with the same
/// reader and reports what it read as a ``StreamAnalysis``; whether a broken
/// input makes the output worthless is the caller's decision.
public enum StreamTransforms {
    /// Writes the payload of `input` (its chunk bodies, concatenated) to `sink`.
    ///
    /// Bodies that fit the reader's buffer (every chunk QEMU writes) are written
    /// only once complete. A longer body is written as it is read; if it turns out
    /// truncated, ``StreamAnalysis/payloadBytes`` is less than what was written,
    /// and the caller cuts the output back if it wants complete chunks only.
    public static func extractPayload(
        of input: StateStreamInput,
        to sink: any ByteSink,
        maximumChunkLength: UInt32 = StateStreamFormat.qemuMaximumChunkLength,
        observe: (borrowing StateStreamReader, StreamEvent) throws -> Void = { _, _ in }
    ) throws -> StreamAnalysis {
        let analysis = try StreamAnalysis.analyze(input, maximumChunkLength: maximumChunkLength, computeDigest: false) {
            reader, event in
            if case .payload(let bytes) = event { try sink.write(bytes) }
            try observe(reader, event)
        }
        try sink.finish()
        return analysis
    }

    /// Writes the payload of `input` framed anew in chunks of `chunkSize` bytes.
    public static func rechunk(
        _ input: StateStreamInput,
        chunkSize: Int,
        to sink: any ByteSink,
        maximumChunkLength: UInt32 = StateStreamFormat.qemuMaximumChunkLength,
        observe: (borrowing StateStreamReader, StreamEvent) throws -> Void = { _, _ in }
    ) throws -> StreamAnalysis {
        var framer = PayloadFramer(chunkSize: chunkSize, sink: sink)
        let analysis = try StreamAnalysis.analyze(input, maximumChunkLength: maximumChunkLength, computeDigest: false) {
            reader, event in
            if case .payload(let bytes) = event { try framer.append(bytes) }
            try observe(reader, event)
        }
        try framer.finish()
        return analysis
    }

    /// What ``frame(payload:chunkSize:to:progress:)`` wrote.
    public struct FramingResult: Sendable, Equatable {
        /// Data chunks written, the terminator not counted.
        public let chunks: Int
        /// Payload bytes written: all of the payload source's.
        public let payloadBytes: UInt64
        /// Bytes of the framed stream written: payload, length fields and
        /// terminator.
        public let framedBytes: UInt64

        /// A result from its three counts.
        public init(chunks: Int, payloadBytes: UInt64, framedBytes: UInt64) {
            self.chunks = chunks
            self.payloadBytes = payloadBytes
            self.framedBytes = framedBytes
        }
    }

    /// Frames the raw bytes of `payload` into a valid stream with chunks of
    /// `chunkSize` bytes, as QEMU would write it with that read size.
    public static func frame(
        payload: any ByteSource,
        chunkSize: Int,
        to sink: any ByteSink,
        progress: (UInt64) -> Void = { _ in }
    ) throws -> FramingResult {
        var framer = PayloadFramer(chunkSize: chunkSize, sink: sink)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = try payload.read(into: buffer)
            if count == 0 { break }
            try framer.append(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            progress(framer.payloadBytes)
        }
        try framer.finish()
        return FramingResult(chunks: framer.chunkCount, payloadBytes: framer.payloadBytes, framedBytes: framer.framedBytes)
    }
}
