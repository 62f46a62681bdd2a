import FoundationEssentials

/// A back-end whose payload statetool can recognise and decode: virtiofsd,
/// passt, or any other a module adds.
///
/// Each back-end's module implements it once; the commands never name a
/// back-end, they ask every registered format (StatetoolKit's `BackEnds`)
/// whether a payload is theirs. A payload is recognised by its content as it
/// streams by, never by a one-byte guess: the decoder must take the whole
/// payload as its back-end's, or say that it does not begin like one.
public protocol BackEndFormat: Sendable {
    /// The back-end's name: how reports label it, and the JSON key its state
    /// goes under (`virtiofsd`; a state that does not decode goes under
    /// `virtiofsdError`).
    var name: String { get }

    /// A decoder for one payload, fed as it streams by.
    func makeDecoder() -> any BackEndPayloadDecoder

    /// Whether `bytes`, which are no chunk-framed stream, are this back-end's
    /// payload itself (unframed), judged by what the whole of them says.
    func isBarePayload(_ bytes: [UInt8]) -> Bool
}

/// One payload on its way through a back-end's decoder.
///
/// The decoder keeps what the state holds and nothing else: a payload that is
/// not its back-end's stops it at the first byte that cannot be part of a
/// state, and costs no more memory from there on.
public protocol BackEndPayloadDecoder {
    /// Feeds the next bytes of the payload.
    mutating func feed(_ bytes: ArraySlice<UInt8>)

    /// What the whole payload was, once every byte has been fed: `nil` when it
    /// does not begin like this back-end's payload, the decoded state when it
    /// is one, and the finding decoding stopped at when it begins like one but
    /// is not.
    mutating func finish() -> Result<any DecodedBackEndState, BackEndDecodingFailure>?
}

/// Why a payload that begins like a back-end's does not decode: the finding
/// decoding stopped at, as every report shows findings.
public struct BackEndDecodingFailure: Error, Sendable, CustomStringConvertible {
    /// The finding, in its one JSON shape.
    public let record: FindingRecord
    /// The finding as text: `kind at payload offset N: message`.
    public let description: String

    /// The failure for `finding`.
    public init(_ finding: some Finding) {
        record = FindingRecord(finding)
        description = finding.description
    }
}

/// A back-end's state, decoded: what reports summarise, list and compare.
///
/// Its `Encodable` form is the JSON object that goes under the back-end's
/// name in `inspect --json`.
public protocol DecodedBackEndState: Encodable, Sendable {
    /// The lines that summarise the state for people: a label and its value
    /// (`virtiofsd`: `state V2: 5222 inodes ...`). The first line names the
    /// back-end and says what the state holds.
    var summary: [(label: String, value: String)] { get }

    /// Everything the state holds, one element a line or a few, for
    /// `inspect --decode`.
    var listing: String { get }

    /// The differences by meaning between this state and `other`, in order;
    /// `nil` when `other` is not a state of the same back-end.
    func differences(to other: any DecodedBackEndState) -> [StateDifference]?
}

/// A JSON object that can be written piece by piece, for objects too large
/// to build whole (a state of a million inodes): what its `Encodable` form
/// gives with sorted keys, byte for byte.
public protocol StreamedJSONObject: Encodable {
    /// Writes the object: each part formatted by `format` (the JSON encoder
    /// the whole would be encoded with, keys sorted) and handed to `write`.
    func writeJSON(format: (any Encodable) throws -> [UInt8], write: ([UInt8]) throws -> Void) throws
}
