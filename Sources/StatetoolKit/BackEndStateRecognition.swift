import MigrationFile
import StateStream

/// What the registered back-ends make of each back-end state a migration
/// file holds, fed from the file's events as it is read (`migration ls`).
///
/// Each state's payload streams through every registered decoder; a state
/// whose stream breaks is left unrecognised. Memory is what the decoders keep
/// of a state they take, nothing of one they do not.
public struct BackEndStateRecognition {
    private var current: (streamOffset: UInt64, recognition: PayloadRecognition)?

    /// What each complete state's payload was, by the offset of its stream in
    /// the file; a payload no back-end takes has no entry.
    public private(set) var payloads: [UInt64: RecognizedPayload] = [:]

    /// A recognition by the formats registered now.
    public init() {}

    /// Takes the next event of the file's reading.
    public mutating func observe(_ event: MigrationEvent) {
        switch event {
        case .backEndStateStart(let location):
            current = (location.streamOffset, PayloadRecognition())
        case .backEndState(.payload(let bytes)):
            current?.recognition.feed(bytes)
        case .backEndStateEnd(let location, _):
            guard var state = current, state.streamOffset == location.streamOffset else { return }
            current = nil
            if let recognized = state.recognition.finish() { payloads[location.streamOffset] = recognized }
        case .problem(let problem) where problem.severity == .error:
            current = nil
        default:
            break
        }
    }
}
