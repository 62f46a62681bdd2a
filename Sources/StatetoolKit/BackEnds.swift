import PasstState
import StateStream
import Synchronization
import VirtiofsdState

/// The back-ends whose payloads statetool recognises: virtiofsd and passt,
/// and any a program registers.
///
/// Every command that looks inside a payload asks these formats, in order,
/// whether it is theirs: `inspect` summarises it, `diff --semantic` compares
/// two by meaning, `migration ls` names the back-end of each state a file
/// holds. Adding a back-end is a module implementing `BackEndFormat` and
/// one call to ``register(_:)``; no command changes.
public enum BackEnds {
    private static let registered = Mutex<[any BackEndFormat]>([VirtiofsdBackEnd(), PasstBackEnd()])

    /// The registered formats, in the order they were registered.
    public static var all: [any BackEndFormat] { registered.withLock { $0 } }

    /// Adds `format`, replacing one registered under the same name.
    public static func register(_ format: any BackEndFormat) {
        registered.withLock { formats in
            formats.removeAll { $0.name == format.name }
            formats.append(format)
        }
    }

    /// Removes the format registered under `name`, if any.
    public static func unregister(named name: String) {
        registered.withLock { formats in formats.removeAll { $0.name == name } }
    }

    /// Whether `bytes`, which are no chunk-framed stream, are the payload of
    /// a registered back-end.
    public static func isBarePayload(_ bytes: [UInt8]) -> Bool {
        all.contains { $0.isBarePayload(bytes) }
    }
}

/// A payload fed to every registered back-end's decoder at once, as it
/// streams by, and what each made of it at its end.
public struct PayloadRecognition {
    private var decoders: [(format: any BackEndFormat, decoder: any BackEndPayloadDecoder)]

    /// A recognition by the formats registered now.
    public init(formats: [any BackEndFormat] = BackEnds.all) {
        decoders = formats.map { ($0, $0.makeDecoder()) }
    }

    /// Feeds the next payload bytes to every decoder.
    public mutating func feed(_ bytes: ArraySlice<UInt8>) {
        for index in decoders.indices { decoders[index].decoder.feed(bytes) }
    }

    /// What the whole payload was, by the first back-end that takes it as
    /// its own (decoded or not); `nil` when none does.
    public mutating func finish() -> RecognizedPayload? {
        for index in decoders.indices {
            if let result = decoders[index].decoder.finish() {
                return RecognizedPayload(backEnd: decoders[index].format.name, result: result)
            }
        }
        return nil
    }

    /// Recognises `payload`, held whole.
    public static func recognize(_ payload: [UInt8]) -> RecognizedPayload? {
        var recognition = PayloadRecognition()
        recognition.feed(payload[...])
        return recognition.finish()
    }
}

/// A payload a back-end took as its own: its state, or why it does not decode.
///
/// Its `Encodable` form is the short one listings give each state:
/// `{backEnd, summary, error}`, `error` a finding or `null`.
public struct RecognizedPayload: Sendable, Encodable {
    /// The back-end's name (`BackEndFormat.name`).
    public let backEnd: String
    /// The decoded state, or the finding decoding stopped at.
    public let result: Result<any DecodedBackEndState, BackEndDecodingFailure>

    /// The decoded state, when it decoded.
    public var state: (any DecodedBackEndState)? {
        guard case .success(let state) = result else { return nil }
        return state
    }

    private enum CodingKeys: String, CodingKey { case backEnd, summary, error }

    /// Encodes `{backEnd, summary, error}`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(backEnd, forKey: .backEnd)
        try container.encode(headline, forKey: .summary)
        switch result {
        case .success: try container.encodeNil(forKey: .error)
        case .failure(let failure): try container.encode(failure.record, forKey: .error)
        }
    }

    /// The first summary line's value, or why it does not decode: one line
    /// for listings (`state V2: 5222 inodes ...`).
    public var headline: String {
        switch result {
        case .success(let state): return state.summary.first?.value ?? backEnd
        case .failure(let failure): return "does not decode: \(failure)"
        }
    }
}
