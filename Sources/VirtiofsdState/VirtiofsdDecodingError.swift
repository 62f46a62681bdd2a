import StateStream

/// Why a payload is not a virtiofsd state, and where: a byte offset in the payload.
public struct VirtiofsdDecodingError: Error, PayloadFinding, Hashable {
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

    /// What is wrong.
    public let reason: Reason
    /// The field being read, e.g. `inodes[12].location`.
    public let field: String
    /// The offset in the payload where the value starts.
    public let payloadOffset: Int

    init(_ reason: Reason, field: String, offset: Int) {
        self.reason = reason
        self.field = field
        self.payloadOffset = offset
    }

    /// The stable names of the kinds of error.
    public enum Kind: String, Sendable, CaseIterable {
        /// A ``Reason/truncated``.
        case truncated
        /// A ``Reason/overlongVarint``.
        case overlongVarint = "overlong-varint"
        /// A ``Reason/invalidBool(_:)``.
        case invalidBool = "invalid-bool"
        /// A ``Reason/invalidOptionTag(_:)``.
        case invalidOptionTag = "invalid-option-tag"
        /// A ``Reason/unknownTag(_:)``.
        case unknownTag = "unknown-tag"
        /// A ``Reason/lengthBeyondEnd(declared:bytesLeft:)``.
        case lengthBeyondEnd = "length-beyond-end"
        /// A ``Reason/tooLong(_:limit:)``.
        case tooLong = "too-long"
        /// A ``Reason/invalidUTF8``.
        case invalidUTF8 = "invalid-utf8"
        /// A ``Reason/trailingBytes(_:)``.
        case trailingBytes = "trailing-bytes"
    }

    /// The kind of ``reason``.
    public var kind: Kind {
        switch reason {
        case .truncated: return .truncated
        case .overlongVarint: return .overlongVarint
        case .invalidBool: return .invalidBool
        case .invalidOptionTag: return .invalidOptionTag
        case .unknownTag: return .unknownTag
        case .lengthBeyondEnd: return .lengthBeyondEnd
        case .tooLong: return .tooLong
        case .invalidUTF8: return .invalidUTF8
        case .trailingBytes: return .trailingBytes
        }
    }


    /// What is wrong, naming the field, in one sentence without the offset.
    public var message: String {
        switch reason {
        case .truncated: return "the payload ends inside \(field)"
        case .overlongVarint: return "\(field): varint longer than its type allows"
        case .invalidBool(let value): return "\(field): bool byte \(value), not 0 or 1"
        case .invalidOptionTag(let value): return "\(field): option tag \(value), not 0 or 1"
        case .unknownTag(let tag): return "\(field): unknown variant \(tag)"
        case .lengthBeyondEnd(let declared, let left): return "\(field): length \(declared) but only \(left) bytes left"
        case .tooLong(let length, let limit): return "\(field): \(length) bytes, more than any path (\(limit))"
        case .invalidUTF8: return "\(field): not UTF-8"
        case .trailingBytes(let count): return "\(count) bytes follow the state"
        }
    }
}
