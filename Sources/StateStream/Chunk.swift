/// One data chunk of a state stream: a big-endian 32-bit length and that many
/// payload bytes.
public struct Chunk: Hashable, Sendable, Codable {
    /// Position among the stream's data chunks, from 0.
    public let index: Int
    /// Offset of the chunk's length field in the framed stream.
    public let offset: UInt64
    /// The declared payload length (never 0: a zero length is the terminator).
    public let length: UInt32

    /// A chunk from its index, the offset of its length field and its length.
    public init(index: Int, offset: UInt64, length: UInt32) {
        self.index = index
        self.offset = offset
        self.length = length
    }

    /// Offset of the first payload byte.
    public var payloadOffset: UInt64 { offset + UInt64(StateStreamFormat.lengthFieldSize) }
    /// Offset just past the chunk.
    public var endOffset: UInt64 { payloadOffset + UInt64(length) }
    /// Bytes the chunk takes framed: its length field and its payload.
    public var framedLength: UInt64 { endOffset - offset }
}

/// The rules of the chunk-framed state stream, in one place.
///
/// QEMU's `vhost_save_backend_state` writes the state a vhost-user back-end hands
/// over as `[be32 length][length bytes]` repeated, ended by a zero length. There is
/// no magic, version, checksum or total length. Its writer reads the back-end's
/// pipe at most 1 MiB at a time and writes one chunk per `read()`; its loader
/// accepts any 32-bit length.
public enum StateStreamFormat {
    /// Bytes in a length field.
    public static let lengthFieldSize = 4
    /// The largest chunk QEMU writes (1 MiB); larger ones draw a warning.
    public static let qemuMaximumChunkLength: UInt32 = 1 << 20
    /// The end marker: a zero length.
    public static let terminator: [UInt8] = [0, 0, 0, 0]

    /// Framing bytes a stream of `chunkCount` data chunks carries besides its
    /// payload: one length field per chunk plus the terminator.
    public static func overhead(chunkCount: Int) -> UInt64 {
        UInt64(lengthFieldSize) * UInt64(chunkCount + 1)
    }
}
