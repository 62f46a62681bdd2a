/// Why a payload is not a virtiofsd state, and where: a byte offset in the payload.
public struct VirtiofsdDecodingError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What is wrong.
    public enum Reason: Hashable, Sendable {
        /// The payload ends inside a value.
        case truncated
        /// A varint is longer than its type allows.
        case overlongVarint
        /// A bool byte other than 0 or 1.
        case invalidBool(UInt8)
        /// An option tag other than 0 or 1.
        case invalidOptionTag(UInt8)
        /// An enum tag with no variant.
        case unknownTag(UInt32)
        /// A length longer than the bytes left could hold.
        case lengthBeyondEnd(declared: UInt64, bytesLeft: Int)
        /// A string or byte string longer than any virtiofsd writes (`PATH_MAX`).
        case tooLong(Int, limit: Int)
        /// A string that is not UTF-8.
        case invalidUTF8
        /// Bytes follow the state. virtiofsd ignores them; statetool does not.
        case trailingBytes(Int)
    }

    public let reason: Reason
    /// The field being read, e.g. `inodes[12].location`.
    public let field: String
    /// The offset in the payload where the value starts.
    public let offset: Int

    init(_ reason: Reason, field: String, offset: Int) {
        self.reason = reason
        self.field = field
        self.offset = offset
    }

    /// A stable name for the kind of error, for JSON.
    public var kind: String {
        switch reason {
        case .truncated: return "truncated"
        case .overlongVarint: return "overlong-varint"
        case .invalidBool: return "invalid-bool"
        case .invalidOptionTag: return "invalid-option-tag"
        case .unknownTag: return "unknown-tag"
        case .lengthBeyondEnd: return "length-beyond-end"
        case .tooLong: return "too-long"
        case .invalidUTF8: return "invalid-utf8"
        case .trailingBytes: return "trailing-bytes"
        }
    }

    public var description: String {
        let what: String
        switch reason {
        case .truncated: what = "the payload ends inside \(field)"
        case .overlongVarint: what = "\(field): varint longer than its type allows"
        case .invalidBool(let value): what = "\(field): bool byte \(value), not 0 or 1"
        case .invalidOptionTag(let value): what = "\(field): option tag \(value), not 0 or 1"
        case .unknownTag(let tag): what = "\(field): unknown variant \(tag)"
        case .lengthBeyondEnd(let declared, let left): what = "\(field): length \(declared) but only \(left) bytes left"
        case .tooLong(let length, let limit): what = "\(field): \(length) bytes, more than any path (\(limit))"
        case .invalidUTF8: what = "\(field): not UTF-8"
        case .trailingBytes(let count): what = "\(count) bytes follow the state"
        }
        return "\(kind) at payload offset \(offset): \(what)"
    }
}
