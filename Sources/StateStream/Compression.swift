/// How a state stream is stored on disk or in a pipe.
///
/// Detected from the content, never from a file name: see ``detect(leadingBytes:)``.
public enum Compression: String, Sendable, Codable {
    /// Raw chunk framing.
    case none
    /// One or more zstd frames (skippable frames allowed) holding the framing.
    case zstd

    /// How many leading bytes ``detect(leadingBytes:)`` needs to decide.
    public static let magicLength = 4

    /// Decides the compression from the first bytes of an input.
    ///
    /// A zstd frame starts with the little-endian magic `0xFD2FB528`
    /// (bytes `28 B5 2F FD`); a skippable frame with `0x184D2A50` to `0x184D2A5F`
    /// (bytes `5X 2A 4D 18`). Anything else, including an input shorter than four
    /// bytes, is raw framing.
    ///
    /// A raw stream whose first chunk length happens to be `0x28B52FFD` or
    /// `0x5X2A4D18` (about 680 MiB or 1.3 GiB) is read as zstd; QEMU never writes
    /// chunks that large.
    public static func detect(leadingBytes bytes: some Collection<UInt8>) -> Compression {
        guard bytes.count >= magicLength else { return .none }
        let magic = bytes.readInteger(endianness: .little, as: UInt32.self) ?? 0
        if magic == 0xFD2F_B528 || magic & 0xFFFF_FFF0 == 0x184D_2A50 {
            return .zstd
        }
        return .none
    }
}
