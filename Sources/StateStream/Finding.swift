/// What every report statetool makes shares: a problem in a stream or a
/// migration file, an inconsistency or decoding error in a back-end's
/// payload, a change `repair` made. Each has a stable kind, a severity, an
/// offset and what that offset counts, and a message; commands print them in
/// one text form (``description``) and one JSON form.
///
/// ```swift
/// for problem in analysis.problems {
///     print("\(problem.severity.rawValue): \(problem)")  // error: truncated-chunk at offset 9392: …
/// }
/// ```
public protocol Finding: Sendable, CustomStringConvertible {
    /// The stable kebab-case names of this type's kinds, as scripts match them.
    associatedtype Kind: RawRepresentable<String>

    /// What kind of finding this is.
    var kind: Kind { get }
    /// How bad it is.
    var severity: Severity { get }
    /// Where it is, counted in ``offsetBase``.
    var offset: UInt64 { get }
    /// What ``offset`` counts.
    var offsetBase: OffsetBase { get }
    /// What is wrong (or what was done) and what was expected, in one
    /// sentence without the offset.
    var message: String { get }
}

extension Finding {
    /// `kind at offset N: message`, naming the offset's base when it is not
    /// the stream's or file's own (`compressed offset`, `payload offset`).
    public var description: String {
        "\(kind.rawValue) at \(offsetBase.phrase) \(offset): \(message)"
    }
}

/// A finding in a back-end's payload that decoding stops at: an error, at
/// an offset in the payload (the stream with its framing taken off).
public protocol PayloadFinding: Finding {
    /// Where it is, in bytes of the payload.
    var payloadOffset: Int { get }
}

extension PayloadFinding {
    /// Always ``Severity/error``: decoding stops at it.
    public var severity: Severity { .error }
    /// ``payloadOffset``, as the offset every finding has.
    public var offset: UInt64 { UInt64(payloadOffset) }
    /// Always ``OffsetBase/payload``.
    public var offsetBase: OffsetBase { .payload }
}

/// How bad a finding is.
public enum Severity: String, Sendable, Codable, CaseIterable {
    /// Broken: reading stops at the first error, and the command fails.
    case error
    /// It loads, but it is not what QEMU or the back-end writes.
    case warning
    /// Not a problem: something a command did (a repair's change).
    case note
}

/// What a finding's offset counts.
public enum OffsetBase: String, Sendable, Codable, CaseIterable {
    /// Bytes of the framed state stream (after decompression) or of the
    /// migration file the finding is in.
    case input
    /// Bytes of the zstd-compressed input.
    case compressedInput
    /// Bytes of a back-end's payload (the stream with its framing taken off).
    case payload
    /// Bytes of the command's output.
    case output

    /// How text output names the offset.
    public var phrase: String {
        switch self {
        case .input: return "offset"
        case .compressedInput: return "compressed offset"
        case .payload: return "payload offset"
        case .output: return "output offset"
        }
    }
}
