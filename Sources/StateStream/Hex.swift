extension Sequence<UInt8> {
    /// Lowercase hexadecimal, two digits per byte: how digests, file handles
    /// and differing bytes are shown. The one hex encoder of the project.
    public var hexString: String { hexString(separator: "") }

    /// Lowercase hexadecimal, two digits per byte, `separator` between bytes.
    public func hexString(separator: String) -> String {
        let digits = Array("0123456789abcdef".utf8)
        let between = Array(separator.utf8)
        var text = [UInt8]()
        for byte in self {
            if !text.isEmpty { text += between }
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
