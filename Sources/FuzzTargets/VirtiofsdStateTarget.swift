import VirtiofsdState

/// The virtiofsd payload decoder fed arbitrary bytes:
/// - an error's offset lies within the input;
/// - a decoded state re-encodes to the input exactly when the input is as
///   long as the re-encoding (every varint minimal), and its encoding decodes
///   to the same encoding;
/// - the same bytes fed in pieces, their length unknown (as `inspect` decodes
///   a payload streaming by), decode to the same state, or fail too;
/// - consistency problems lie within the input, paths resolve without looping,
///   and a state does not differ from itself by meaning.
enum VirtiofsdStateTarget {
    static func run(_ bytes: [UInt8]) throws {
        let streamed = streamedDecoding(bytes)
        let state: VirtiofsdState
        do {
            state = try VirtiofsdState(decoding: bytes)
        } catch {
            try check(error.offset <= bytes.count, "\(error) lies beyond the input")
            try check(streamed == nil, "a payload that does not decode whole decodes in pieces")
            return
        }
        try check(streamed == state, "the payload decodes to another state in pieces")
        let encoded = state.encoded()
        try check(encoded.count <= bytes.count, "the re-encoding is longer than the input")
        if encoded.count == bytes.count {
            try check(encoded == bytes, "a minimal encoding does not round-trip")
        }
        let again = try VirtiofsdState(decoding: encoded)
        try check(again.encoded() == encoded, "the re-encoding does not decode to itself")
        for problem in state.consistencyProblems() {
            try check(problem.payloadOffset <= bytes.count, "\(problem) lies beyond the input")
        }
        _ = InodePaths(state)
        try check(state.differences(to: state).isEmpty, "a state differs from itself")
    }

    /// The state decoded from `bytes` fed in pieces of 1, 2, 3, ... bytes; `nil` if it fails.
    private static func streamedDecoding(_ bytes: [UInt8]) -> VirtiofsdState? {
        var decoder = VirtiofsdStateDecoder()
        inGrowingPieces(bytes) { decoder.feed($0) }
        return try? decoder.finish()
    }
}
