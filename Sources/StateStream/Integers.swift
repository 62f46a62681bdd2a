/// The byte order of an integer in a format: big-endian (QEMU's migration
/// stream and the state stream's lengths) or little-endian (vhost-user messages
/// on x86-64, zstd's magic).
public enum Endianness: Sendable {
    /// Most significant byte first (network order).
    case big
    /// Least significant byte first.
    case little
}

extension Collection<UInt8> {
    /// The integer of `T`'s width in the first bytes, in `endianness`; `nil`
    /// when there are fewer bytes than it takes. The one integer reader of
    /// statetool's formats, after swift-nio's `readInteger(endianness:as:)`.
    @inlinable
    public func readInteger<T: FixedWidthInteger>(endianness: Endianness = .big, as: T.Type = T.self) -> T? {
        let width = MemoryLayout<T>.size
        guard count >= width else { return nil }
        var value: T = 0
        switch endianness {
        case .big:
            for byte in prefix(width) { value = value << 8 | T(byte) }
        case .little:
            for byte in prefix(width).reversed() { value = value << 8 | T(byte) }
        }
        return value
    }
}

extension FixedWidthInteger {
    /// The integer's bytes in `endianness`.
    @inlinable
    public func bytes(endianness: Endianness = .big) -> [UInt8] {
        let width = MemoryLayout<Self>.size
        let littleFirst = (0..<width).map { UInt8(truncatingIfNeeded: self >> (8 * $0)) }
        return endianness == .little ? littleFirst : littleFirst.reversed()
    }
}
