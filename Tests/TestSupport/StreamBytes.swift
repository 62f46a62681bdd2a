/// State streams written by hand, independently of the library's writer: the
/// one framing the tests of every module build their inputs with.
public enum StreamBytes {
    /// `[be32 length][bytes]` per chunk, then the terminator if asked.
    public static func frame(_ chunks: [[UInt8]], terminator: Bool = true) -> [UInt8] {
        var out: [UInt8] = []
        for chunk in chunks {
            out += bigEndian(UInt32(chunk.count)) + chunk
        }
        return terminator ? out + [0, 0, 0, 0] : out
    }

    /// `payload` cut into chunks of `chunkSize` bytes (the last shorter), framed
    /// and terminated.
    public static func frame(_ payload: [UInt8], chunkSize: Int) -> [UInt8] {
        frame(stride(from: 0, to: payload.count, by: chunkSize).map { Array(payload[$0..<min(payload.count, $0 + chunkSize)]) })
    }

    /// `value` as four big-endian bytes.
    public static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }
}
