import PasstState

/// The passt payload decoder fed arbitrary bytes (the magic put in front, so
/// that the fuzzer spends its time past it):
/// - an error's offset lies within the input, and the decoder holds no queue
///   bytes (queues come as lengths and digests);
/// - the same bytes fed in pieces decode to the same state, or the same error;
/// - every flow and queue lies within the input, in order;
/// - a state does not differ from itself by meaning.
enum PasstStateTarget {
    static func run(_ input: [UInt8]) throws {
        let bytes = PasstFormat.magic + input
        let whole = Result { () throws(PasstDecodingError) in try PasstState(decoding: bytes) }
        let streamed = streamedDecoding(bytes)
        try check("\(whole)" == "\(streamed)", "in pieces: \(streamed), whole: \(whole)")
        switch whole {
        case .failure(let error):
            try check(error.payloadOffset <= bytes.count, "\(error) lies beyond the input")
        case .success(let state):
            var end = PasstFormat.headerSize + PasstFormat.addressesSize + PasstFormat.countSize
            for flow in state.flows {
                try check(flow.payloadOffset == end, "a flow record is not where the previous one ended")
                end += PasstFormat.flowSize
            }
            for flow in state.flows {
                let socket = flow.socket
                try check(socket.payloadOffset == end, "flows[\(flow.payloadOffset)]'s extended record is not where the previous one ended")
                end += PasstFormat.extendedSize + socket.sendQueue.length + socket.receiveQueue.length
                try check(socket.tcpState != 0 || socket.sendQueue.length + socket.receiveQueue.length == 0, "a skipped flow has queue bytes")
            }
            try check(end == bytes.count, "the state ends at \(end), the input at \(bytes.count)")
            try check(state.differences(to: state).isEmpty, "a state differs from itself")
        }
    }

    /// `bytes` fed in pieces of 1, 2, 3, ... bytes.
    private static func streamedDecoding(_ bytes: [UInt8]) -> Result<PasstState, PasstDecodingError> {
        var decoder = PasstStateDecoder()
        inGrowingPieces(bytes) { decoder.feed($0) }
        return Result { () throws(PasstDecodingError) in try decoder.finish() }
    }
}
