/// An optional that JSON shows as `null` when absent, instead of leaving the key out.
public struct Nullable<Wrapped: Encodable>: Encodable {
    /// The value, or `nil` for JSON's `null`.
    public let value: Wrapped?

    /// Wraps `value`.
    public init(_ value: Wrapped?) {
        self.value = value
    }

    /// Encodes the value, or `null`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let value { try container.encode(value) } else { try container.encodeNil() }
    }
}

extension Nullable: Sendable where Wrapped: Sendable {}
