/// Reads the postcard 1.x encoding (serde) that virtiofsd writes its state in:
/// LEB128 varints, zigzag integers, one-byte bools and option tags, and
/// length-prefixed sequences.
///
/// It reads a window of a payload: `bytes` are the payload's bytes from
/// offset `base` on, and every error names its offset in the whole payload.
/// Strict and bounded: when the payload's total length is known, a length is
/// checked against the bytes left before anything is read or allocated; a
/// byte string is never longer than ``maximumByteStringLength``. Running out
/// of `bytes` is ``VirtiofsdDecodingError/Reason/truncated``: for a window of
/// a payload still arriving, the sign to wait for more.
struct PostcardReader {
    private let bytes: [UInt8]
    private let base: Int
    private let total: Int?
    private var position: Int

    /// The longest string or byte string read: `PATH_MAX`. virtiofsd's are
    /// names, paths and file handles (at most 128 bytes).
    static let maximumByteStringLength = 4096

    /// Reads the whole payload `bytes`.
    init(_ bytes: [UInt8]) {
        self.init(bytes, from: 0, base: 0, total: bytes.count)
    }

    /// Reads `bytes` from index `start`; `bytes[0]` is payload offset `base`,
    /// and the payload is `total` bytes long (`nil` while unknown).
    init(_ bytes: [UInt8], from start: Int, base: Int, total: Int?) {
        self.bytes = bytes
        self.base = base
        self.total = total
        position = start
    }

    /// The payload offset of the next byte.
    var offset: Int { base + position }
    /// The index in `bytes` of the next byte.
    var index: Int { position }

    /// Bytes of the window not read yet.
    var bytesLeft: Int { bytes.count - position }

    /// Bytes of the payload not read yet, when its length is known.
    private var payloadBytesLeft: Int? { total.map { $0 - offset } }

    /// An unsigned varint of at most 10 bytes whose value fits 64 bits.
    mutating func u64(_ what: @autoclosure () -> String) throws(VirtiofsdDecodingError) -> UInt64 {
        try varint(what(), maximumBytes: 10, lastByteLimit: 0x01)
    }

    /// An unsigned varint of at most 5 bytes whose value fits 32 bits
    /// (enum tags, and `i32` before zigzag).
    mutating func u32(_ what: @autoclosure () -> String) throws(VirtiofsdDecodingError) -> UInt32 {
        UInt32(try varint(what(), maximumBytes: 5, lastByteLimit: 0x0f))
    }

    /// A zigzag-encoded `i32`.
    mutating func i32(_ what: @autoclosure () -> String) throws(VirtiofsdDecodingError) -> Int32 {
        let raw = try u32(what())
        return Int32(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    mutating func bool(_ what: @autoclosure () -> String) throws(VirtiofsdDecodingError) -> Bool {
        let start = offset
        switch try byte(what()) {
        case 0: return false
        case 1: return true
        case let value: throw VirtiofsdDecodingError(.invalidBool(value), field: what(), offset: start)
        }
    }

    /// An option's tag: whether a value follows.
    mutating func optionTag(_ what: @autoclosure () -> String) throws(VirtiofsdDecodingError) -> Bool {
        let start = offset
        switch try byte(what()) {
        case 0: return false
        case 1: return true
        case let value: throw VirtiofsdDecodingError(.invalidOptionTag(value), field: what(), offset: start)
        }
    }

    /// A sequence or map length. Each element takes at least
    /// `minimumElementSize` bytes, so a longer one cannot be in the bytes left.
    mutating func length(_ what: @autoclosure () -> String, minimumElementSize: Int) throws(VirtiofsdDecodingError) -> Int {
        let start = offset
        let length = try u64(what())
        if let left = payloadBytesLeft, length > UInt64(left / minimumElementSize) {
            throw VirtiofsdDecodingError(.lengthBeyondEnd(declared: length, bytesLeft: left), field: what(), offset: start)
        }
        guard length <= UInt64(Int.max) else {
            throw VirtiofsdDecodingError(.lengthBeyondEnd(declared: length, bytesLeft: Int.max), field: what(), offset: start)
        }
        return Int(length)
    }

    /// Length-prefixed bytes.
    mutating func byteString(_ what: @autoclosure () -> String) throws(VirtiofsdDecodingError) -> [UInt8] {
        let start = offset
        let count = try length(what(), minimumElementSize: 1)
        guard count <= Self.maximumByteStringLength else {
            throw VirtiofsdDecodingError(.tooLong(count, limit: Self.maximumByteStringLength), field: what(), offset: start)
        }
        guard count <= bytesLeft else { throw VirtiofsdDecodingError(.truncated, field: what(), offset: offset) }
        defer { position += count }
        return Array(bytes[position..<position + count])
    }

    /// A length-prefixed UTF-8 string.
    mutating func string(_ what: @autoclosure () -> String) throws(VirtiofsdDecodingError) -> String {
        let start = offset
        let utf8 = try byteString(what())
        guard let text = String(validating: utf8, as: UTF8.self) else {
            throw VirtiofsdDecodingError(.invalidUTF8, field: what(), offset: start)
        }
        return text
    }

    private mutating func byte(_ what: @autoclosure () -> String) throws(VirtiofsdDecodingError) -> UInt8 {
        guard position < bytes.count else { throw VirtiofsdDecodingError(.truncated, field: what(), offset: offset) }
        defer { position += 1 }
        return bytes[position]
    }

    private mutating func varint(_ what: @autoclosure () -> String, maximumBytes: Int, lastByteLimit: UInt8) throws(VirtiofsdDecodingError) -> UInt64 {
        let start = offset
        var value: UInt64 = 0
        for index in 0..<maximumBytes {
            let byte = try byte(what())
            if index == maximumBytes - 1 && byte > lastByteLimit {
                throw VirtiofsdDecodingError(.overlongVarint, field: what(), offset: start)
            }
            value |= UInt64(byte & 0x7f) << (7 * UInt64(index))
            if byte & 0x80 == 0 { return value }
        }
        throw VirtiofsdDecodingError(.overlongVarint, field: what(), offset: start)
    }
}

/// Writes the postcard encoding, with minimal varints, as virtiofsd does.
struct PostcardWriter {
    private(set) var bytes: [UInt8] = []

    /// Empties the writer, keeping its buffer for the next value.
    mutating func reset() { bytes.removeAll(keepingCapacity: true) }

    mutating func u64(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(rest & 0x7f) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    mutating func i32(_ value: Int32) {
        u64(UInt64(UInt32(bitPattern: (value << 1) ^ (value >> 31))))
    }

    mutating func bool(_ value: Bool) { bytes.append(value ? 1 : 0) }

    mutating func byteString(_ value: [UInt8]) {
        u64(UInt64(value.count))
        bytes += value
    }

    mutating func string(_ value: String) { byteString(Array(value.utf8)) }
}
