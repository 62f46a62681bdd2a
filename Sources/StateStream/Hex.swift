extension Sequence<UInt8> {
    /// Lowercase hexadecimal, two digits per byte: how digests, file handles
    /// and differing bytes are shown. The one hex encoder of the project.
    public var hexString: String { hexString(separator: "") }

    /// Lowercase hexadecimal, two digits per byte, `separator` between bytes.
    public func hexString(separator: String) -> String {
        var text = [UInt8]()
        appendHex(to: &text, separator: Array(separator.utf8))
        return String(decoding: text, as: UTF8.self)
    }

    /// Appends the bytes as lowercase hexadecimal, two digits per byte and
    /// `separator` between bytes, to the UTF-8 `text` (text put together as bytes).
    @inlinable
    public func appendHex(to text: inout [UInt8], separator: [UInt8] = []) {
        var first = true
        for byte in self {
            if !first { text += separator }
            first = false
            text.append(hexDigits[Int(byte >> 4)])
            text.append(hexDigits[Int(byte & 0x0f)])
        }
    }
}

/// The digits of ``Swift/Sequence/appendHex(to:separator:)``.
@usableFromInline
let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
